import { X509Certificate } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CertificateAuthority, createCA, type IssuedCertificate, issueCertificate } from './ca.js';
import {
  CertificateExpiredError,
  CertificateParseError,
  InvalidOptionError,
  KeyPermissionsError,
  LockTimeoutError,
} from './errors.js';
import { fingerprint256, spkiPin } from './fingerprint.js';
import { checkKeyPair } from './key-pair.js';
import { canonicalIp, normalizeDnsName, normalizeEmail, normalizeIp, normalizeUri } from './names.js';
import type { DevCAOptions, DevCertificateOptions, KeyPair } from './options.js';
import { readPemFile, writeFileAtomic } from './pem.js';
import { subjectAltNames } from './san.js';

const DAY = 86_400_000;
const CA_CERT = 'ca.pem';
const CA_KEY = 'ca-key.pem';
const LOCK = '.lock';

/** A leaf certificate kept in the dev CA directory. */
export interface DevCertificate extends KeyPair {
  /** The dev CA certificate PEM (trust this on clients). */
  caCert: string;
  certPath: string;
  keyPath: string;
  /** True when this call wrote a new certificate, false when the stored one was still good. */
  issued: boolean;
  notAfter: Date;
  fingerprint256: string;
  spkiPin: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Like ssh: a private key others can read is refused rather than silently used. */
async function checkKeyMode(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) throw new KeyPermissionsError(path, mode);
}

/**
 * Cross-process mutual exclusion with an O_EXCL lock file. A lock older than `staleMs` belongs to
 * a crashed process and is broken; every wait is bounded by `timeoutMs`.
 */
async function withLock<T>(
  dir: string,
  timeoutMs: number,
  staleMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const path = join(dir, LOCK);
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        const { mtimeMs } = await stat(path);
        if (Date.now() - mtimeMs > staleMs) {
          await unlink(path).catch(() => {});
          continue;
        }
      } catch {
        continue; // released between our open and stat
      }
      if (Date.now() >= deadline) throw new LockTimeoutError(path, timeoutMs);
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}

function fileStem(options: DevCertificateOptions): string {
  const stem =
    options.name ??
    options.dnsNames?.[0]?.replace(/^\*/, '_wildcard') ??
    options.ipAddresses?.[0]?.replace(/:/g, '_') ??
    (options.usage === 'client' ? options.commonName : undefined);
  if (stem === undefined)
    throw new InvalidOptionError('certificate() needs a name, a DNS name or an IP address');
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(stem) || stem.startsWith('.') || stem === 'ca' || stem === 'ca-key') {
    throw new InvalidOptionError(`invalid certificate file name ${JSON.stringify(stem)}`);
  }
  return stem;
}

/**
 * A development CA kept in a directory, like mkcert's CAROOT: created once (key mode 0600), reused
 * by every later run, and issuing leaf certificates that are stored next to it and reused until
 * they are missing, about to expire, lack a requested name, or were issued by another CA.
 */
export class DevCA {
  /** Directory holding the CA and issued certificates. */
  readonly dir: string;
  /** Path of the CA certificate: point clients' `ca`, `curl --cacert` or a browser trust store at it. */
  readonly caCertPath: string;
  readonly caKeyPath: string;
  /** The CA (certificate and key PEM). */
  readonly ca: CertificateAuthority;
  /** True when this `openDevCA()` call created the CA. */
  readonly created: boolean;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;

  /** @internal use `openDevCA()` */
  constructor(
    dir: string,
    ca: CertificateAuthority,
    created: boolean,
    lockTimeoutMs: number,
    staleLockMs: number,
  ) {
    this.dir = dir;
    this.caCertPath = join(dir, CA_CERT);
    this.caKeyPath = join(dir, CA_KEY);
    this.ca = ca;
    this.created = created;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.#staleLockMs = staleLockMs;
  }

  /** The CA certificate PEM, for clients' `ca` option. */
  get caCert(): string {
    return this.ca.cert;
  }

  /**
   * Returns a leaf certificate for the requested names, from disk when the stored one still
   * covers them, otherwise newly issued and saved (`<name>.pem`, `<name>-key.pem` mode 0600).
   */
  async certificate(options: DevCertificateOptions): Promise<DevCertificate> {
    const stem = fileStem(options);
    const renewBeforeDays = options.renewBeforeDays ?? 7;
    if (typeof renewBeforeDays !== 'number' || !(renewBeforeDays >= 0)) {
      throw new InvalidOptionError(`renewBeforeDays must be >= 0, got ${String(renewBeforeDays)}`);
    }
    const certPath = join(this.dir, `${stem}.pem`);
    const keyPath = join(this.dir, `${stem}-key.pem`);
    return withLock(this.dir, this.#lockTimeoutMs, this.#staleLockMs, async () => {
      const stored = await this.#reusable(certPath, keyPath, options, renewBeforeDays);
      if (stored) return stored;
      const issued: IssuedCertificate = await issueCertificate(this.ca, options);
      await writeFileAtomic(keyPath, issued.key, 0o600);
      await writeFileAtomic(certPath, issued.cert, 0o644);
      return {
        cert: issued.cert,
        key: issued.key,
        caCert: this.ca.cert,
        certPath,
        keyPath,
        issued: true,
        notAfter: issued.notAfter,
        fingerprint256: issued.fingerprint256,
        spkiPin: issued.spkiPin,
      };
    });
  }

  async #reusable(
    certPath: string,
    keyPath: string,
    options: DevCertificateOptions,
    renewBeforeDays: number,
  ): Promise<DevCertificate | undefined> {
    if (!(await exists(certPath)) || !(await exists(keyPath))) return undefined;
    await checkKeyMode(keyPath);
    let pair: ReturnType<typeof checkKeyPair>;
    try {
      pair = checkKeyPair({ cert: await readPemFile(certPath), key: await readPemFile(keyPath) });
    } catch {
      return undefined; // unreadable or mismatched files are replaced, they hold nothing worth keeping
    }
    const { leaf } = pair;
    const now = Date.now();
    if (Date.parse(leaf.validTo) - renewBeforeDays * DAY <= now || Date.parse(leaf.validFrom) > now)
      return undefined;
    const caCert = new X509Certificate(this.ca.cert);
    if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) return undefined;
    if (pair.keyType !== (options.keyType ?? 'P-256')) return undefined;
    const usage = options.usage ?? 'server';
    const eku = leaf.keyUsage ?? [];
    if (usage !== 'client' && !eku.includes('1.3.6.1.5.5.7.3.1')) return undefined;
    if (usage !== 'server' && !eku.includes('1.3.6.1.5.5.7.3.2')) return undefined;
    const have = subjectAltNames(leaf.raw);
    const dns = new Set(have.dnsNames);
    const ips = new Set(have.ipAddresses.map((ip) => canonicalIp(ip) ?? ip));
    for (const n of options.dnsNames ?? []) if (!dns.has(normalizeDnsName(n))) return undefined;
    for (const n of options.ipAddresses ?? []) if (!ips.has(normalizeIp(n))) return undefined;
    for (const n of options.emails ?? []) if (!have.emails.includes(normalizeEmail(n))) return undefined;
    for (const n of options.uris ?? []) if (!have.uris.includes(normalizeUri(n))) return undefined;
    return {
      cert: pair.cert,
      key: pair.key,
      caCert: this.ca.cert,
      certPath,
      keyPath,
      issued: false,
      notAfter: new Date(leaf.validTo),
      fingerprint256: fingerprint256(leaf),
      spkiPin: spkiPin(leaf),
    };
  }
}

async function loadCA(dir: string): Promise<CertificateAuthority | undefined> {
  const certPath = join(dir, CA_CERT);
  const keyPath = join(dir, CA_KEY);
  const [hasCert, hasKey] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (!hasCert && !hasKey) return undefined;
  // The key is written before the certificate, so a key alone is debris of an interrupted creation.
  if (!hasCert) return undefined;
  if (!hasKey) {
    throw new CertificateParseError(
      `${certPath} exists without ${keyPath}: the CA cannot issue; restore the key or remove the directory`,
    );
  }
  await checkKeyMode(keyPath);
  const pair = checkKeyPair({ cert: await readPemFile(certPath), key: await readPemFile(keyPath) });
  const { leaf } = pair;
  if (!leaf.ca) throw new CertificateParseError(`${certPath} is not a CA certificate`);
  if (pair.keyType === undefined) {
    throw new CertificateParseError(`${keyPath} is not a P-256, P-384, RSA-2048 or RSA-3072 key`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= Date.now()) {
    throw new CertificateExpiredError(
      `dev CA in ${dir} expired on ${leaf.validTo}; remove the directory (and its trust entries) to create a new one`,
    );
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1] ?? '';
  return {
    cert: pair.cert,
    key: pair.key,
    keyType: pair.keyType,
    name: cn,
    notBefore: new Date(leaf.validFrom),
    notAfter,
    fingerprint256: fingerprint256(leaf),
  };
}

/**
 * Opens the dev CA in `options.dir`, creating the directory (mode 0700) and the CA on first use.
 * Safe to call from several processes at once: creation is serialised by a lock file.
 */
export async function openDevCA(options: DevCAOptions): Promise<DevCA> {
  if (!options || typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new InvalidOptionError('openDevCA needs a dir');
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  const staleLockMs = options.staleLockMs ?? 30_000;
  if (!(lockTimeoutMs > 0) || !(staleLockMs > 0)) {
    throw new InvalidOptionError('lockTimeoutMs and staleLockMs must be positive numbers');
  }
  const { dir } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = await loadCA(dir);
  if (existing) return new DevCA(dir, existing, false, lockTimeoutMs, staleLockMs);
  return withLock(dir, lockTimeoutMs, staleLockMs, async () => {
    const raced = await loadCA(dir);
    if (raced) return new DevCA(dir, raced, false, lockTimeoutMs, staleLockMs);
    const ca = await createCA(options);
    await writeFileAtomic(join(dir, CA_KEY), ca.key, 0o600);
    await writeFileAtomic(join(dir, CA_CERT), ca.cert, 0o644);
    return new DevCA(dir, ca, true, lockTimeoutMs, staleLockMs);
  });
}
