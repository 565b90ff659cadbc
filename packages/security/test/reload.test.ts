import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  clientOptions,
  createCA,
  type IssuedCertificate,
  issueCertificate,
  type ReloadError,
  type Reloader,
  reloadable,
  serverOptions,
} from '../src/index.js';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { handshake, type Served, serve, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let ca: CertificateAuthority;
let first: IssuedCertificate;
let second: IssuedCertificate;
let served: Served;
let reloader: Reloader | undefined;
let certPath: string;
let keyPath: string;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  ca ??= await createCA({ name: 'reload CA' });
  first = await issueCertificate(ca, { dnsNames: ['localhost'] });
  second = await issueCertificate(ca, { dnsNames: ['localhost'] });
  certPath = join(dir, 'cert.pem');
  keyPath = join(dir, 'key.pem');
  await writeFile(certPath, first.cert);
  await writeFile(keyPath, first.key, { mode: 0o600 });
  served = await serve(serverOptions(first));
});
afterEach(async () => {
  reloader?.close();
  reloader = undefined;
  await served.close();
  await cleanup();
});

async function presented(): Promise<string> {
  const r = await handshake(served.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
  if (!r.ok) throw r.error;
  return r.peerFingerprint;
}

/** Writes via temp file + rename, the way certbot and kubernetes replace certificates. */
async function replace(path: string, data: string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

describe('reloadable(server, files)', () => {
  it('serves the new certificate to new handshakes after the files change', async () => {
    reloader = reloadable(served.server, { certPath, keyPath }, { debounceMs: 50 });
    const reloaded = new Promise((resolve) => reloader!.once('reload', resolve));
    expect(await presented()).toBe(first.fingerprint256);
    await replace(keyPath, second.key);
    await replace(certPath, second.cert);
    const info = await reloaded;
    expect(info).toMatchObject({ fingerprint256: second.fingerprint256 });
    expect(await presented()).toBe(second.fingerprint256);
  });

  it('keeps the old certificate and reports an error when the replacement is broken', async () => {
    reloader = reloadable(served.server, { certPath, keyPath }, { debounceMs: 50 });
    const errors: ReloadError[] = [];
    reloader.on('error', (e) => errors.push(e));
    await replace(certPath, 'not a certificate');
    await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(errors[0]?.code).toBe('ERR_SECURITY_RELOAD');
    expect(errors[0]?.message).toMatch(/keeping the current one/);
    expect(await presented()).toBe(first.fingerprint256);
  });

  it('refuses a certificate whose key does not match, and an expired one', async () => {
    reloader = reloadable(served.server, { certPath, keyPath }, { debounceMs: 50 });
    const errors: ReloadError[] = [];
    reloader.on('error', (e) => errors.push(e));
    await replace(certPath, second.cert); // key still the first one
    await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect((errors[0]?.cause as { code?: string } | undefined)?.code).toBe('ERR_SECURITY_KEY_MISMATCH');
    expect(await presented()).toBe(first.fingerprint256);

    const expired = await issueCertificate(ca, {
      dnsNames: ['localhost'],
      notBefore: new Date(Date.now() - 2 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    errors.length = 0;
    await writeFile(keyPath, expired.key);
    await replace(certPath, expired.cert);
    await expect
      .poll(() => errors.some((e) => (e.cause as { code?: string }).code === 'ERR_SECURITY_CERT_EXPIRED'), {
        timeout: 10_000,
      })
      .toBe(true);
    expect(await presented()).toBe(first.fingerprint256);
  });

  it('recovers when a good pair follows a bad one', async () => {
    reloader = reloadable(served.server, { certPath, keyPath }, { debounceMs: 50 });
    reloader.on('error', () => {});
    await replace(certPath, 'garbage');
    await expect.poll(async () => (await reloader!.reload()) === false, { timeout: 5000 }).toBe(true);
    await replace(keyPath, second.key);
    await replace(certPath, second.cert);
    await expect.poll(presented, { timeout: 10_000, interval: 100 }).toBe(second.fingerprint256);
  });
});

describe('reloadable(server, loader)', () => {
  it('reloads on demand from a function and keeps mTLS settings', async () => {
    let current: IssuedCertificate = first;
    reloader = reloadable(served.server, () => current, { serverOptions: { minVersion: 'TLSv1.3' } });
    current = second;
    expect(await reloader.reload()).toBe(true);
    expect(reloader.current?.fingerprint256).toBe(second.fingerprint256);
    expect(await presented()).toBe(second.fingerprint256);
    // The new context carries the hardened options: TLS 1.2 is now refused.
    const r12 = await handshake(
      served.port,
      clientOptions({ ca: ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' }),
    );
    expect(r12.ok).toBe(false);
    // Same material again: nothing to do.
    expect(await reloader.reload()).toBe(false);
  });

  it('reports a loader that throws and does not crash without an error listener', async () => {
    reloader = reloadable(served.server, () => {
      throw new Error('vault unreachable');
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      expect(await reloader.reload()).toBe(false);
      await expect.poll(() => warnings.length, { timeout: 5000 }).toBeGreaterThan(0);
      expect(warnings[0]?.message).toMatch(/could not read/);
    } finally {
      process.off('warning', onWarning);
    }
    expect(await presented()).toBe(first.fingerprint256);
  });

  itWithPeers(
    ['openssl'],
    'accepts key types this package does not issue (a P-521 certificate made by openssl req)',
    async () => {
      const { run } = await import('./helpers.js');
      const { readFile } = await import('node:fs/promises');
      const r = await run(peerPath('openssl'), [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-521',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        join(dir, 'p521-key.pem'),
        '-out',
        join(dir, 'p521.pem'),
      ]);
      expect(r.code, r.stderr).toBe(0);
      const cert = await readFile(join(dir, 'p521.pem'), 'utf8');
      reloader = reloadable(served.server, {
        certPath: join(dir, 'p521.pem'),
        keyPath: join(dir, 'p521-key.pem'),
      });
      expect(await reloader.reload()).toBe(true);
      const hs = await handshake(served.port, clientOptions({ ca: cert, servername: 'localhost' }));
      expect(hs.ok).toBe(true);
    },
  );

  it('stops watching when the server closes', async () => {
    const s = await serve(serverOptions(first));
    const r = reloadable(s.server, { certPath, keyPath });
    await s.close();
    expect(await r.reload()).toBe(false); // closed: nothing is loaded any more
  });

  it('rejects a non-server and a bad source up front', () => {
    expect(() => reloadable({} as never, { certPath, keyPath })).toThrow(/setSecureContext/);
    expect(() => reloadable(served.server, 42 as never)).toThrow(/certPath, keyPath/);
    expect(() => reloadable(served.server, { certPath: '/nonexistent/dir/c.pem', keyPath: keyPath })).toThrow(
      /cannot watch \/nonexistent\/dir/,
    );
  });
});
