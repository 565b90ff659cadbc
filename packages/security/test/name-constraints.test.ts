import { afterAll, describe, expect, it } from 'vitest';
import { createCA, InvalidOptionError, issueCertificate, serverOptions } from '../src/index.js';
import { handshake, type Served, serve } from './helpers.js';

// A CA restricted by nameConstraints: Node's own verifier (OpenSSL) must refuse leaves outside it.
const servers: Served[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function tryLeaf(
  caCert: string,
  caKey: string,
  leaf: { dnsNames?: string[]; ipAddresses?: string[] },
  servername: string,
) {
  const issued = await issueCertificate({ cert: caCert, key: caKey }, leaf);
  const s = await serve(serverOptions({ cert: issued.cert, key: issued.key }));
  servers.push(s);
  return handshake(s.port, { ca: caCert, servername });
}

describe('CA name constraints', () => {
  it('permits the listed DNS subtrees and IP ranges and refuses every other name', async () => {
    const ca = await createCA({
      name: 'constrained',
      validityDays: 90,
      nameConstraints: { dnsNames: ['localhost', 'chat.example'], ipRanges: ['127.0.0.0/8', '::1/128'] },
    });
    const good = await tryLeaf(
      ca.cert,
      ca.key,
      { dnsNames: ['localhost', 'chat.example'], ipAddresses: ['127.0.0.1', '::1'] },
      'chat.example',
    );
    expect(good.ok).toBe(true);
    if (good.ok) good.socket.destroy();
    const evil = await tryLeaf(ca.cert, ca.key, { dnsNames: ['bank.example'] }, 'bank.example');
    expect(evil.ok).toBe(false);
    if (!evil.ok) expect(`${evil.error.code} ${evil.error.message}`).toMatch(/subtree|constraint|PERMITTED/i);
    const evilIp = await tryLeaf(ca.cert, ca.key, { ipAddresses: ['10.1.2.3'] }, 'localhost');
    expect(evilIp.ok).toBe(false);
    expect(ca.notAfter.getTime() - Date.now()).toBeLessThan(91 * 86_400_000);
  });

  it('refuses malformed constraints with InvalidOptionError', async () => {
    await expect(createCA({ nameConstraints: {} })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createCA({ nameConstraints: { ipRanges: ['300.1.1.1/8'] } })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(createCA({ nameConstraints: { ipRanges: ['10.0.0.0/33'] } })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
  });
});
