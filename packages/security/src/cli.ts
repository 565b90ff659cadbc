#!/usr/bin/env node
// net-dev-ca: certificates from a local dev CA without openssl, like mkcert without the trust store.
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDevCA } from './dev-ca.js';
import { SecurityError } from './errors.js';
import type { KeyType } from './options.js';

const USAGE = `Usage: net-dev-ca [options] <name|ip>...

Issues (or reuses) a certificate for the given DNS names and IP addresses from a development CA
kept in a directory, and prints where the files are.

Options:
  --dir <path>      CA directory (default: $NET_DEV_CA_DIR or ~/.local/share/net-dev-ca)
  --name <stem>     file name stem of the certificate (default: first name)
  --client          a client certificate (clientAuth) instead of a server one
  --key-type <t>    P-256 (default), P-384, RSA-2048, RSA-3072
  --days <n>        validity in days (default 365)
  --ca-path         only print the CA certificate path (creating the CA if needed)
  -h, --help        this help
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      client: { type: 'boolean', default: false },
      'key-type': { type: 'string' },
      days: { type: 'string' },
      'ca-path': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const dir = values.dir ?? process.env.NET_DEV_CA_DIR ?? join(homedir(), '.local', 'share', 'net-dev-ca');
  const ca = await openDevCA({ dir });
  if (values['ca-path']) {
    process.stdout.write(`${ca.caCertPath}\n`);
    return 0;
  }
  if (positionals.length === 0 && !values.client) {
    process.stderr.write(USAGE);
    return 2;
  }
  const days = values.days === undefined ? undefined : Number(values.days);
  const cert = await ca.certificate({
    dnsNames: positionals.filter((n) => isIP(n) === 0),
    ipAddresses: positionals.filter((n) => isIP(n) !== 0),
    usage: values.client ? 'client' : 'server',
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(values.client && positionals.length === 0 ? { commonName: values.name ?? 'client' } : {}),
    ...(values['key-type'] === undefined ? {} : { keyType: values['key-type'] as KeyType }),
    ...(days === undefined ? {} : { validityDays: days }),
  });
  process.stdout.write(
    [
      `${cert.issued ? 'issued' : 'reused'} certificate valid until ${cert.notAfter.toISOString()}`,
      `  cert:   ${cert.certPath}`,
      `  key:    ${cert.keyPath}`,
      `  CA:     ${ca.caCertPath}${ca.created ? ' (new CA: trust this file in your clients)' : ''}`,
      `  sha256: ${cert.fingerprint256}`,
      `  pin:    sha256/${cert.spkiPin}`,
      '',
    ].join('\n'),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = err instanceof SecurityError ? ` [${err.code}]` : '';
    process.stderr.write(`net-dev-ca: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    process.exitCode = 1;
  },
);
