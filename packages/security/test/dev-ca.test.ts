import { chmod, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CertificateExpiredError,
  clientOptions,
  issueCertificate,
  KeyPermissionsError,
  LockTimeoutError,
  openDevCA,
  serverOptions,
} from '../src/index.js';
import { handshake, serve, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  const t = await tempDir();
  dir = join(t.dir, 'ca-root');
  cleanup = t.cleanup;
});
afterEach(() => cleanup());

const LOCALHOST = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

describe('a dev CA in a directory', () => {
  it('is created once with a private key of mode 0600 in a 0700 directory, then reused', async () => {
    const first = await openDevCA({ dir, name: 'My Dev CA' });
    expect(first.created).toBe(true);
    expect((await stat(first.caKeyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await readFile(first.caCertPath, 'utf8')).toBe(first.caCert);
    const second = await openDevCA({ dir });
    expect(second.created).toBe(false);
    expect(second.ca.fingerprint256).toBe(first.ca.fingerprint256);
    expect(second.ca.name).toBe('My Dev CA');
  });

  it('creates exactly one CA when several callers race', async () => {
    const all = await Promise.all(Array.from({ length: 4 }, () => openDevCA({ dir })));
    expect(new Set(all.map((c) => c.ca.fingerprint256)).size).toBe(1);
    expect(all.filter((c) => c.created)).toHaveLength(1);
  });

  it('issues a localhost certificate a real TLS client trusts by IP and name', async () => {
    const ca = await openDevCA({ dir });
    const leaf = await ca.certificate(LOCALHOST);
    expect(leaf.issued).toBe(true);
    expect(leaf.certPath).toBe(join(dir, 'localhost.pem'));
    expect((await stat(leaf.keyPath)).mode & 0o777).toBe(0o600);
    const s = await serve(serverOptions(leaf));
    try {
      expect((await handshake(s.port, clientOptions({ ca: ca.caCert, servername: 'localhost' }))).ok).toBe(
        true,
      );
      expect((await handshake(s.port, clientOptions({ ca: leaf.caCert, host: '127.0.0.1' }))).ok).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('reuses a stored leaf that still covers the request', async () => {
    const ca = await openDevCA({ dir });
    const a = await ca.certificate(LOCALHOST);
    const b = await (await openDevCA({ dir })).certificate({ dnsNames: ['localhost'], ipAddresses: ['::1'] });
    expect(b.issued).toBe(false);
    expect(b.fingerprint256).toBe(a.fingerprint256);
  });

  it('reissues when the leaf is missing', async () => {
    const ca = await openDevCA({ dir });
    const a = await ca.certificate(LOCALHOST);
    await rm(a.certPath);
    const b = await ca.certificate(LOCALHOST);
    expect(b.issued).toBe(true);
    expect(b.fingerprint256).not.toBe(a.fingerprint256);
  });

  it('reissues when a requested name is missing', async () => {
    const ca = await openDevCA({ dir });
    const a = await ca.certificate(LOCALHOST);
    const b = await ca.certificate({ ...LOCALHOST, dnsNames: ['localhost', 'chat.localhost'] });
    expect(b.issued).toBe(true);
    expect(b.fingerprint256).not.toBe(a.fingerprint256);
    const c = await ca.certificate({ ...LOCALHOST, ipAddresses: ['127.0.0.1', '::1', '192.168.1.10'] });
    expect(c.issued).toBe(true);
  });

  it('reissues when the leaf is expired or about to expire', async () => {
    const ca = await openDevCA({ dir });
    const expired = await issueCertificate(ca.ca, {
      ...LOCALHOST,
      notBefore: new Date(Date.now() - 30 * 86_400_000),
      notAfter: new Date(Date.now() - 60_000),
    });
    await writeFile(join(dir, 'localhost.pem'), expired.cert);
    await writeFile(join(dir, 'localhost-key.pem'), expired.key, { mode: 0o600 });
    const fresh = await ca.certificate(LOCALHOST);
    expect(fresh.issued).toBe(true);
    expect(fresh.notAfter.getTime()).toBeGreaterThan(Date.now() + 300 * 86_400_000);

    const soon = await issueCertificate(ca.ca, { ...LOCALHOST, validityDays: 3 });
    await writeFile(join(dir, 'localhost.pem'), soon.cert);
    await writeFile(join(dir, 'localhost-key.pem'), soon.key, { mode: 0o600 });
    expect((await ca.certificate(LOCALHOST)).issued).toBe(true);
    await writeFile(join(dir, 'localhost.pem'), soon.cert);
    await writeFile(join(dir, 'localhost-key.pem'), soon.key, { mode: 0o600 });
    expect((await ca.certificate({ ...LOCALHOST, renewBeforeDays: 1 })).issued).toBe(false);
  });

  it('reissues a leaf from another CA or with a key that does not match', async () => {
    const ca = await openDevCA({ dir });
    const a = await ca.certificate(LOCALHOST);
    const foreignRoot = await openDevCA({ dir: `${dir}-other` });
    try {
      const foreign = await foreignRoot.certificate(LOCALHOST);
      await writeFile(a.certPath, foreign.cert);
      await writeFile(a.keyPath, foreign.key, { mode: 0o600 });
      expect((await ca.certificate(LOCALHOST)).issued).toBe(true);
      const b = await ca.certificate(LOCALHOST);
      await writeFile(b.keyPath, a.key, { mode: 0o600 });
      expect((await ca.certificate(LOCALHOST)).issued).toBe(true);
    } finally {
      await rm(`${dir}-other`, { recursive: true, force: true });
    }
  });

  it('refuses a CA key readable by others, like ssh', async () => {
    const ca = await openDevCA({ dir });
    await chmod(ca.caKeyPath, 0o644);
    const err = await openDevCA({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyPermissionsError);
    expect((err as KeyPermissionsError).code).toBe('ERR_SECURITY_KEY_PERMISSIONS');
  });

  it('refuses an expired CA with instructions', async () => {
    // createCA() cannot mint an expired CA, so build one directly with the certificate builder.
    const { buildCertificate, basicConstraints, distinguishedName } = await import('../src/cert-builder.js');
    const { generateKeys } = await import('../src/keys.js');
    const { toPem } = await import('../src/pem.js');
    const pair = await generateKeys('P-256');
    const name = distinguishedName('Old CA');
    const der = buildCertificate({
      serialNumber: Buffer.from([1]),
      issuer: name,
      subject: name,
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
      spki: pair.spki,
      extensions: [basicConstraints(true, 0)],
      signingKey: pair.privateKey,
      signingKeyType: 'P-256',
    });
    const cert = { toString: () => toPem('CERTIFICATE', der) };
    const keys = { privateKey: pair.privateKey };
    const { exportPrivateKeyPem } = await import('../src/keys.js');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'ca.pem'), cert.toString());
    await writeFile(join(dir, 'ca-key.pem'), exportPrivateKeyPem(keys.privateKey), {
      mode: 0o600,
    });
    const err = await openDevCA({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertificateExpiredError);
    expect(String((err as Error).message)).toMatch(/remove the directory/);
  });

  it('waits a bounded time for a lock held by another process, and breaks a stale one', async () => {
    const ca = await openDevCA({ dir, lockTimeoutMs: 200 });
    await writeFile(join(dir, '.lock'), '99999');
    const started = Date.now();
    const err = await ca.certificate(LOCALHOST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
    const old = new Date(Date.now() - 120_000);
    await utimes(join(dir, '.lock'), old, old);
    expect((await ca.certificate(LOCALHOST)).issued).toBe(true);
  });

  it('rejects unsafe certificate file names', async () => {
    const ca = await openDevCA({ dir });
    await expect(ca.certificate({ ...LOCALHOST, name: '../evil' })).rejects.toThrow(
      /invalid certificate file name/,
    );
    await expect(ca.certificate({ ...LOCALHOST, name: 'ca' })).rejects.toThrow(
      /invalid certificate file name/,
    );
  });
});
