import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { createCA, type IssuedCertificate, issueCertificate, serverOptions } from '../src/index.js';
import { run, type Served, serve, tempDir } from './helpers.js';

// The real peer: Debian's `openssl s_client`. OpenSSL 3 itself refuses TLS < 1.2 and weak suites at
// its default security level, so every probe lowers the client's level (@SECLEVEL=0): any refusal
// observed is the server's. Each weak probe also runs against a Node server with default options,
// which accepts it, so the refusals below are our policy and not the test setup. Node's default
// minimum is already TLS 1.2, so the protocol-version probes run against a server that allows
// TLS 1.0 (and SECLEVEL 0, which OpenSSL 3 needs for it) as their control.

let dir: string;
let cleanup: () => Promise<void>;
let caFile: string;
let ours: Served;
let nodeDefaults: Served;
let legacy: Served;
let oursEcdsa: Served;
let rsa: IssuedCertificate;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  const ca = await createCA({ name: 'openssl interop CA' });
  caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  // RSA: the weak suites under test (static RSA, CBC) need an RSA certificate to be negotiable at all.
  rsa = await issueCertificate(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    keyType: 'RSA-2048',
  });
  const ec = await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  ours = await serve(serverOptions(rsa));
  nodeDefaults = await serve({ cert: rsa.cert, key: rsa.key });
  legacy = await serve({ cert: rsa.cert, key: rsa.key, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  oursEcdsa = await serve(serverOptions(ec));
});
afterAll(async () => {
  await Promise.all([ours?.close(), nodeDefaults?.close(), legacy?.close(), oursEcdsa?.close()]);
  await cleanup?.();
});

async function sClient(port: number, args: string[]) {
  const r = await run(peerPath('openssl'), [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    '-servername',
    'localhost',
    '-brief',
    '-CAfile',
    caFile,
    '-verify_return_error',
    '-verify_hostname',
    'localhost',
    ...args,
  ]);
  const out = r.stdout + r.stderr;
  const established = out.includes('CONNECTION ESTABLISHED');
  return {
    established,
    protocol: /Protocol version: (\S+)/.exec(out)?.[1],
    cipher: /Ciphersuite: (\S+)/.exec(out)?.[1],
    verified: /Verification: OK/.test(out),
    out,
  };
}

function lastServerError(s: Served): string | undefined {
  return (s.clientErrors.at(-1) as NodeJS.ErrnoException | undefined)?.code;
}

describeWithPeers(['openssl'], 'openssl s_client against a serverOptions() server', () => {
  it.each([
    ['TLS 1.0', ['-tls1'], 'TLSv1'],
    ['TLS 1.1', ['-tls1_1'], 'TLSv1.1'],
  ])('refuses %s (which a server allowing TLSv1 accepts)', async (_name, args, protocol) => {
    const control = await sClient(legacy.port, [...args, '-cipher', 'DEFAULT:@SECLEVEL=0']);
    expect(control.established, control.out).toBe(true);
    expect(control.protocol).toBe(protocol);

    const before = ours.clientErrors.length;
    const r = await sClient(ours.port, [...args, '-cipher', 'DEFAULT:@SECLEVEL=0']);
    expect(r.established).toBe(false);
    expect(r.out).toMatch(/alert protocol version/);
    await expect.poll(() => ours.clientErrors.length, { timeout: 5000 }).toBeGreaterThan(before);
    expect(lastServerError(ours)).toBe('ERR_SSL_UNSUPPORTED_PROTOCOL');
  });

  it.each([
    'AES128-SHA',
    'AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-SHA',
    'AES256-SHA256',
    'ECDHE-RSA-AES256-SHA384',
  ])('refuses %s on TLS 1.2 (which Node defaults accept)', async (cipher) => {
    const control = await sClient(nodeDefaults.port, ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
    expect(control.established).toBe(true);
    expect(control.cipher).toBe(cipher);

    const before = ours.clientErrors.length;
    const r = await sClient(ours.port, ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
    expect(r.established).toBe(false);
    expect(r.out).toMatch(/handshake failure/);
    await expect.poll(() => ours.clientErrors.length, { timeout: 5000 }).toBeGreaterThan(before);
    expect(lastServerError(ours)).toBe('ERR_SSL_NO_SHARED_CIPHER');
  });

  it('accepts TLS 1.3 and the chain verifies against the CA file', async () => {
    const r = await sClient(ours.port, ['-tls1_3']);
    expect(r.established).toBe(true);
    expect(r.protocol).toBe('TLSv1.3');
    expect(r.verified).toBe(true);
  });

  it('accepts TLS 1.2 with ECDHE-RSA AES-GCM and ChaCha20-Poly1305', async () => {
    for (const cipher of [
      'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-RSA-CHACHA20-POLY1305',
    ]) {
      const r = await sClient(ours.port, ['-tls1_2', '-cipher', cipher]);
      expect(r.established, r.out).toBe(true);
      expect(r.cipher).toBe(cipher);
      expect(r.verified).toBe(true);
    }
  });

  it('accepts TLS 1.2 with ECDHE-ECDSA suites on an ECDSA certificate', async () => {
    const r = await sClient(oursEcdsa.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    expect(r.established, r.out).toBe(true);
    expect(r.cipher).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    expect(r.verified).toBe(true);
  });

  it('refuses client-initiated renegotiation on TLS 1.2 (which Node defaults allow)', async () => {
    const a = await serve(serverOptions(rsa), { keepOpen: true });
    const b = await serve({ cert: rsa.cert, key: rsa.key }, { keepOpen: true });
    try {
      const refused = await renegotiate(a.port);
      expect(refused).toMatch(/RENEGOTIATING/);
      expect(refused).toMatch(/no renegotiation/);
      const control = await renegotiate(b.port);
      expect(control).toMatch(/RENEGOTIATING/);
      expect(control).not.toMatch(/no renegotiation/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/** s_client renegotiates when it reads a line "R" on stdin. Returns its whole output. */
async function renegotiate(port: number): Promise<string> {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    peerPath('openssl'),
    ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', caFile],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    await expect.poll(() => out.includes('Verify return code'), { timeout: 10_000 }).toBe(true);
    child.stdin.write('R\n');
    await expect.poll(() => /RENEGOTIATING/.test(out), { timeout: 5000 }).toBe(true);
    // Give the renegotiation time to finish or fail before closing stdin.
    await new Promise((r) => setTimeout(r, 500));
    child.stdin.end();
    await closed;
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
  return out;
}
