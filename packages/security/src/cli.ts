#!/usr/bin/env node
// net-dev-ca: certificates from a local dev CA without openssl, like mkcert without the trust store.
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDevCA } from './dev-ca.js';
import { SecurityError } from './errors.js';
import type { KeyType } from './options.js';
import { installTrust, uninstallTrust } from './trust-store.js';

const USAGE = `Usage: net-dev-ca [options] <name|ip>...
       net-dev-ca install [--dir <path>] [--nss | --system]
       net-dev-ca uninstall [--dir <path>] [--nss | --system]

Issues (or reuses) a certificate for the given DNS names and IP addresses from a development CA
kept in a directory, and prints where the files are. \`install\` makes this machine trust the CA:
the system store (Debian/Ubuntu, needs root) and the NSS databases of Chromium and Firefox
(certutil from libnss3-tools); \`uninstall\` removes it again.

Options:
  --dir <path>      CA directory (default: $NET_DEV_CA_DIR or ~/.local/share/net-dev-ca)
  --name <stem>     file name stem of the certificate (default: first name)
  --client          a client certificate (clientAuth) instead of a server one
  --key-type <t>    P-256 (default), P-384, RSA-2048, RSA-3072
  --days <n>        validity in days (default 365)
  --ca-path         only print the CA certificate path (creating the CA if needed)
  --nss             install/uninstall: only the NSS databases (browsers) of $HOME
  --system          install/uninstall: only the system trust store
  -h, --help        this help
`;

const SHORT_USAGE = 'usage: net-dev-ca [options] <name|ip>... | install | uninstall  (net-dev-ca --help)\n';

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        dir: { type: 'string' },
        name: { type: 'string' },
        client: { type: 'boolean', default: false },
        'key-type': { type: 'string' },
        days: { type: 'string' },
        'ca-path': { type: 'boolean', default: false },
        nss: { type: 'boolean', default: false },
        system: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    // parseArgs explains itself at length; a user needs the one wrong word and the usage line.
    const detail = err instanceof Error ? err.message.split('.')[0] : String(err);
    process.stderr.write(`net-dev-ca: ${detail}\n${SHORT_USAGE}`);
    return undefined;
  }
}

async function trust(verb: 'install' | 'uninstall', caPath: string, nss: boolean, system: boolean) {
  const targets = nss || system ? { nss, system } : { nss: true, system: true };
  const env = {
    home: homedir(),
    systemDir: process.env.NET_DEV_CA_SYSTEM_DIR ?? '/usr/local/share/ca-certificates',
    isRoot: process.getuid?.() === 0,
  };
  const report =
    verb === 'install'
      ? await installTrust(caPath, targets, env)
      : await uninstallTrust(caPath, targets, env);
  if (report.length === 0)
    report.push(`nothing to ${verb}: the CA ${caPath} was not found in the selected stores`);
  process.stdout.write(`${report.join('\n')}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const dir = values.dir ?? process.env.NET_DEV_CA_DIR ?? join(homedir(), '.local', 'share', 'net-dev-ca');
  const ca = await openDevCA({ dir });
  const verb = positionals[0];
  if (verb === 'install' || verb === 'uninstall') {
    if (positionals.length > 1) {
      process.stderr.write(`net-dev-ca: ${verb} takes no names\n${SHORT_USAGE}`);
      return 2;
    }
    return trust(verb, ca.caCertPath, values.nss, values.system);
  }
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
