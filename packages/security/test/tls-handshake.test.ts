import { once } from 'node:events';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  clientOptions,
  createCA,
  type IssuedCertificate,
  InvalidOptionError,
  issueCertificate,
  KeyMismatchError,
  PinMismatchError,
  peerIdentity,
  serverOptions,
  selfSigned,
} from '../src/index.js';
import { handshake, type Served, serve } from './helpers.js';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: IssuedCertificate;
let served: Served;

beforeAll(async () => {
  ca = await createCA({ name: 'handshake test CA' });
  otherCa = await createCA({ name: 'untrusted CA' });
  server = await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  served = await serve(serverOptions(server));
});
afterAll(() => served.close());

describe('a client made with clientOptions and a server made with serverOptions', () => {
  it('complete a TLS 1.3 handshake on loopback', async () => {
    const r = await handshake(served.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.greeting).toBe('hello\n');
      expect(r.protocol).toBe('TLSv1.3');
    }
  });

  it('verify the certificate against an IP address SAN when connecting by IP', async () => {
    const r = await handshake(served.port, clientOptions({ ca: ca.cert, host: '127.0.0.1' }));
    expect(r.ok).toBe(true);
  });

  it('negotiate an ECDHE AEAD suite when limited to TLS 1.2', async () => {
    const r = await handshake(
      served.port,
      clientOptions({ ca: ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' }),
    );
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.protocol).toBe('TLSv1.2');
      expect(r.cipher).toMatch(/^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    }
  });

  it('honour the client cipher preference on TLS 1.2', async () => {
    const r = await handshake(
      served.port,
      clientOptions({
        ca: ca.cert,
        servername: 'localhost',
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256',
      }),
    );
    expect(r.ok && r.cipher).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
  });
});

describe('the client refuses', () => {
  it('a certificate from a CA it does not trust', async () => {
    const r = await handshake(served.port, clientOptions({ ca: otherCa.cert, servername: 'localhost' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('a certificate when no CA is given (system roots do not include ours)', async () => {
    const r = await handshake(served.port, clientOptions({ servername: 'localhost' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('a certificate for another hostname', async () => {
    const r = await handshake(served.port, clientOptions({ ca: ca.cert, servername: 'example.com' }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(r.error.message).toContain('example.com');
    }
  });

  it('a certificate whose key matches none of the pins', async () => {
    const unrelated = await issueCertificate(ca, { dnsNames: ['localhost'] });
    const r = await handshake(
      served.port,
      clientOptions({ ca: ca.cert, servername: 'localhost', pins: [unrelated.spkiPin] }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(PinMismatchError);
      expect(r.error.code).toBe('ERR_SECURITY_PIN_MISMATCH');
      expect((r.error as PinMismatchError).seen).toContain(server.spkiPin);
    }
  });

  it('an expired certificate', async () => {
    const expired = await issueCertificate(ca, {
      dnsNames: ['localhost'],
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const s = await serve(serverOptions(expired));
    try {
      const r = await handshake(s.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('CERT_HAS_EXPIRED');
    } finally {
      await s.close();
    }
  });

  it('a pinned certificate on the wrong host: pins never replace hostname verification', async () => {
    const r = await handshake(
      served.port,
      clientOptions({ ca: ca.cert, servername: 'example.com', pins: [server.spkiPin] }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('a self-signed certificate unless it is trusted explicitly', async () => {
    const ss = await selfSigned({ dnsNames: ['localhost'] });
    const s = await serve(serverOptions(ss));
    try {
      const refused = await handshake(s.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
      expect(refused.ok).toBe(false);
      if (!refused.ok) expect(refused.error.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      const trusted = await handshake(s.port, clientOptions({ ca: ss.caCert, servername: 'localhost' }));
      expect(trusted.ok).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('pinning', () => {
  it('accepts the leaf key pin (with or without the sha256/ prefix)', async () => {
    for (const pin of [server.spkiPin, `sha256/${server.spkiPin}`]) {
      const r = await handshake(
        served.port,
        clientOptions({ ca: ca.cert, servername: 'localhost', pins: [pin] }),
      );
      expect(r.ok).toBe(true);
    }
  });

  it('accepts a pin of the CA key anywhere in the verified chain', async () => {
    const { spkiPin } = await import('../src/index.js');
    const r = await handshake(
      served.port,
      clientOptions({
        ca: ca.cert,
        servername: 'localhost',
        pins: ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', spkiPin(ca.cert)],
      }),
    );
    expect(r.ok).toBe(true);
  });

  it('rejects malformed pins when building options', () => {
    expect(() => clientOptions({ pins: ['not-a-pin'] })).toThrow(InvalidOptionError);
  });
});

describe('mutual TLS', () => {
  let mtls: Served;
  beforeAll(async () => {
    mtls = await serve(serverOptions({ ...server, ca: ca.cert, requestCert: true }));
  });
  afterAll(() => mtls.close());

  it('refuses a client without a certificate', async () => {
    const before = mtls.clientErrors.length;
    const r = await handshake(mtls.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(String(r.error.code)).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|ECLOSED/);
    await expect.poll(() => mtls.clientErrors.length, { timeout: 5000 }).toBeGreaterThan(before);
    expect(mtls.clientErrors.at(-1)?.message).toMatch(
      /peer did not return a certificate|certificate required/i,
    );
  });

  it('refuses a client certificate from another CA', async () => {
    const stranger = await issueCertificate(otherCa, { usage: 'client', commonName: 'mallory' });
    const r = await handshake(
      mtls.port,
      clientOptions({ ca: ca.cert, servername: 'localhost', ...stranger }),
    );
    expect(r.ok).toBe(false);
  });

  it('accepts a client certificate from the CA and exposes its verified identity', async () => {
    const alice = await issueCertificate(ca, {
      usage: 'client',
      commonName: 'alice',
      emails: ['alice@example.com'],
      uris: ['spiffe://example.org/alice'],
    });
    const r = await handshake(
      mtls.port,
      clientOptions({ ca: ca.cert, servername: 'localhost', cert: alice.cert, key: alice.key }),
    );
    expect(r.ok).toBe(true);
    const socket = mtls.accepted.at(-1)!;
    const id = peerIdentity(socket);
    expect(id).not.toBeNull();
    expect(id?.commonName).toBe('alice');
    expect(id?.emails).toEqual(['alice@example.com']);
    expect(id?.uris).toEqual(['spiffe://example.org/alice']);
    expect(id?.fingerprint256).toBe(alice.fingerprint256);
    expect(id?.spkiPin).toBe(alice.spkiPin);
    expect(id?.serialNumber).toBe(alice.serialNumber);
  });

  it('gives no identity for an unauthenticated peer', async () => {
    const r = await handshake(served.port, clientOptions({ ca: ca.cert, servername: 'localhost' }));
    expect(r.ok).toBe(true);
    expect(peerIdentity(served.accepted.at(-1)!)).toBeNull();
  });

  it('refuses to build requestCert options without a ca', () => {
    expect(() => serverOptions({ ...server, requestCert: true })).toThrow(/requestCert needs `ca`/);
  });
});

describe('SNI', () => {
  it('serves the certificate mapped to the requested host, wildcards included, default otherwise', async () => {
    const a = await issueCertificate(ca, { dnsNames: ['a.test'] });
    const wild = await issueCertificate(ca, { dnsNames: ['*.apps.test'] });
    const s = await serve(serverOptions({ ...server, sni: { 'a.test': a, '*.apps.test': wild } }));
    try {
      const fp = async (servername: string) => {
        const r = await handshake(s.port, clientOptions({ ca: ca.cert, servername }));
        if (!r.ok) throw r.error;
        return r.peerFingerprint;
      };
      expect(await fp('a.test')).toBe(a.fingerprint256);
      expect(await fp('A.TEST')).toBe(a.fingerprint256);
      expect(await fp('x.apps.test')).toBe(wild.fingerprint256);
      expect(await fp('localhost')).toBe(server.fingerprint256);
    } finally {
      await s.close();
    }
  });
});

describe('options policy', () => {
  it('never produces rejectUnauthorized: false and refuses it as input', () => {
    expect(serverOptions(server).rejectUnauthorized).toBe(true);
    expect(clientOptions({}).rejectUnauthorized).toBe(true);
    expect(() => clientOptions({ rejectUnauthorized: false } as never)).toThrow(InvalidOptionError);
    expect(() => serverOptions({ ...server, rejectUnauthorized: false } as never)).toThrow(
      InvalidOptionError,
    );
  });

  it('returns clean Node options when given an issued certificate', () => {
    const o = serverOptions(server);
    expect(Object.keys(o).sort()).toEqual(
      [
        'cert',
        'ciphers',
        'handshakeTimeout',
        'honorCipherOrder',
        'key',
        'minVersion',
        'rejectUnauthorized',
        'requestCert',
        'secureOptions',
      ].sort(),
    );
  });

  it('sets TLS 1.2 minimum, client cipher order, and a short handshake timeout', () => {
    const o = serverOptions(server);
    expect(o.minVersion).toBe('TLSv1.2');
    expect(o.honorCipherOrder).toBe(false);
    expect(o.handshakeTimeout).toBe(10_000);
    expect(o.ciphers).not.toMatch(/(^|:)(AES|DES|RC4|DHE-|CAMELLIA)|CBC|SHA1?(:|$)/);
    expect(() => serverOptions({ ...server, minVersion: 'TLSv1.1' })).toThrow(InvalidOptionError);
  });

  it("does the same TLS 1.2 crypto work as Node's defaults: same suite (ECDHE-ECDSA) and key-exchange group", async () => {
    // The handshake cost of serverOptions() on TLS 1.2 (bench: which option costs) rests on this.
    const defaults = await serve({ cert: server.cert, key: server.key });
    try {
      const negotiated = async (port: number, client: tls.ConnectionOptions) => {
        const socket = tls.connect({ ...client, host: '127.0.0.1', port });
        await once(socket, 'secureConnect');
        const key = socket.getEphemeralKeyInfo() as { name?: string };
        const result = [socket.getProtocol(), socket.getCipher().standardName, key.name];
        socket.destroy();
        return result;
      };
      for (const client of [
        clientOptions({ ca: ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' }),
        { ca: ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' as const }, // Node's default client
      ]) {
        const ours = await negotiated(served.port, client);
        expect(ours).toEqual(await negotiated(defaults.port, client));
        expect(ours).toEqual(['TLSv1.2', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'X25519']);
      }
    } finally {
      await defaults.close();
    }
  });

  it('explains a key that does not belong to the certificate', async () => {
    const other = await issueCertificate(ca, { dnsNames: ['localhost'] });
    expect(() => serverOptions({ cert: server.cert, key: other.key })).toThrow(KeyMismatchError);
    expect(() =>
      serverOptions({ ...server, sni: { 'a.test': { cert: server.cert, key: other.key } } }),
    ).toThrow(/SNI entry a.test/);
  });

  it('does not send an IP address as SNI', () => {
    const o = clientOptions({ servername: '127.0.0.1' });
    expect(o.servername).toBeUndefined();
    expect(o.host).toBe('127.0.0.1');
  });

  it('aborts a handshake that stalls past handshakeTimeout', async () => {
    const s = await serve(serverOptions({ ...server, handshakeTimeout: 300 }));
    try {
      const net = await import('node:net');
      const closed = await new Promise<boolean>((resolve) => {
        const sock = net.connect(s.port, '127.0.0.1');
        const t = setTimeout(() => {
          sock.destroy();
          resolve(false);
        }, 10_000);
        sock.on('error', () => {});
        sock.on('close', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      expect(closed).toBe(true);
      expect(
        s.clientErrors.some((e) => (e as NodeJS.ErrnoException).code === 'ERR_TLS_HANDSHAKE_TIMEOUT'),
      ).toBe(true);
    } finally {
      await s.close();
    }
  });
});
