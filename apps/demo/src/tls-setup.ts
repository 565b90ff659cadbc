import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { openDevCA } from '@net/security';
import type { Logger } from './log.js';

/** Life of the demo's dev CA: short, so a copy someone trusted long ago stops working. */
export const CA_DAYS = 90;
/** Life of the server certificate; reissued when it has 7 days left. */
export const LEAF_DAYS = 30;
const CONSTRAINTS_FILE = 'constraints.json';
const DAY = 86_400_000;

export interface ChatCA {
  cert: string;
  key: string;
  caCert: string;
  caCertPath: string;
}

interface Names {
  dnsNames: string[];
  ipRanges: string[];
}

/** The only names the dev CA may vouch for: localhost, loopback, the bound address, --host-name. */
export function caNames(bindHost: string, hostNames: readonly string[]): Names {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.0/8', '::1/128']);
  for (const name of [bindHost, ...hostNames]) {
    if (name === '0.0.0.0' || name === '::') continue;
    const v = isIP(name);
    if (v === 4) ips.add(`${name}/32`);
    else if (v === 6) ips.add(`${name}/128`);
    else dns.add(name.toLowerCase());
  }
  return { dnsNames: [...dns].sort(), ipRanges: [...ips].sort() };
}

function sameNames(a: Names, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The dev CA for `--tls`: name-constrained to {@link caNames}, valid {@link CA_DAYS} days. A CA
 * in `dir` made with other names (or by an older version, without constraints) or with less
 * than one leaf life left is moved aside to `<dir>.retired-<time>` and replaced.
 */
export async function openChatCA(
  dir: string,
  bindHost: string,
  hostNames: readonly string[],
  log: Logger,
): Promise<ChatCA> {
  const names = caNames(bindHost, hostNames);
  let ca = await openDevCA({ dir, name: 'net-chat dev CA', validityDays: CA_DAYS, nameConstraints: names });
  let recorded: unknown;
  try {
    recorded = JSON.parse(readFileSync(join(dir, CONSTRAINTS_FILE), 'utf8'));
  } catch {
    recorded = undefined;
  }
  const stale = ca.ca.notAfter.getTime() - Date.now() < (LEAF_DAYS + 1) * DAY;
  const tooLong = ca.ca.notAfter.getTime() - Date.now() > (CA_DAYS + 1) * DAY;
  if (!ca.created && (stale || tooLong || !sameNames(names, recorded))) {
    const retired = `${dir}.retired-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(dir, retired);
    log.warn(`dev CA replaced (names, age or life changed); the old one is in ${retired}`);
    ca = await openDevCA({ dir, name: 'net-chat dev CA', validityDays: CA_DAYS, nameConstraints: names });
  }
  if (ca.created) writeFileSync(join(dir, CONSTRAINTS_FILE), `${JSON.stringify(names)}\n`, { mode: 0o644 });
  const leafIps = [
    '127.0.0.1',
    '::1',
    ...names.ipRanges.filter((r) => /\/(32|128)$/.test(r) && r !== '::1/128').map((r) => r.split('/')[0]!),
  ];
  const cert = await ca.certificate({
    name: 'server',
    dnsNames: names.dnsNames,
    ipAddresses: leafIps,
    validityDays: LEAF_DAYS,
  });
  return { cert: cert.cert, key: cert.key, caCert: ca.caCert, caCertPath: ca.caCertPath };
}
