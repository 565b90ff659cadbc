import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createCA, InvalidOptionError, issueCertificate } from '../src/index.js';

/** Connects with Node's verifier (OpenSSL) trusting only `ca`; resolves 'ok' or the error text. */
async function handshake(
  ca: string,
  leaf: { cert: string; key: string },
  servername: string,
): Promise<string> {
  const server = createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        ca,
        servername,
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('ok');
      });
      socket.once('error', (err: Error) => resolve(err.message));
    });
  } finally {
    server.close();
  }
}

describe('CA name constraints', () => {
  const constraints = { dnsNames: ['localhost', 'chat.test'], ipRanges: ['127.0.0.0/8', '::1/128'] };

  it('marks the extension critical with the permitted subtrees', async () => {
    const ca = await createCA({ nameConstraints: constraints });
    const der = new X509Certificate(ca.cert).raw.toString('hex');
    // 2.5.29.30, critical TRUE
    expect(der).toContain('0603551d1e0101ff');
  });

  it('lets verifiers accept leaves inside the constraints and refuse leaves outside', async () => {
    const ca = await createCA({ nameConstraints: constraints });
    const inside = await issueCertificate(ca, {
      dnsNames: ['localhost', 'a.chat.test'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(await handshake(ca.cert, inside, 'localhost')).toBe('ok');
    const outsideDns = await issueCertificate(ca, { dnsNames: ['bank.example'] });
    expect(await handshake(ca.cert, outsideDns, 'bank.example')).toMatch(/permitted subtree violation/);
    const outsideIp = await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['10.1.1.1'] });
    expect(await handshake(ca.cert, outsideIp, 'localhost')).toMatch(/permitted subtree violation/);
  });

  it('is absent unless asked for, so an unconstrained CA vouches for any name', async () => {
    const ca = await createCA();
    expect(new X509Certificate(ca.cert).raw.toString('hex')).not.toContain('0603551d1e');
    const leaf = await issueCertificate(ca, { dnsNames: ['bank.example'] });
    expect(await handshake(ca.cert, leaf, 'bank.example')).toBe('ok');
  });

  it('refuses malformed ranges and empty constraint sets', async () => {
    await expect(createCA({ nameConstraints: { ipRanges: ['127.0.0.0/33'] } })).rejects.toThrow(
      InvalidOptionError,
    );
    await expect(createCA({ nameConstraints: { ipRanges: ['nope/8'] } })).rejects.toThrow(InvalidOptionError);
    await expect(createCA({ nameConstraints: {} })).rejects.toThrow(InvalidOptionError);
  });
});
