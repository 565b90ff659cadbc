import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  CertificateParseError,
  createCA,
  fingerprint256,
  InvalidOptionError,
  issueCertificate,
  KeyMismatchError,
  selfSigned,
  spkiPin,
  subjectAltNames,
} from '../src/index.js';
import { describeWithPeers, itWithPeers, peerPath } from '../../../test-support/peers.js';
import { run, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let ca: CertificateAuthority;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  ca = await createCA({ name: 'Cert Test CA', organization: 'Acme Dev' });
});
afterAll(() => cleanup());

async function x509Text(pem: string): Promise<string> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.pem`);
  await writeFile(file, pem);
  const r = await run(peerPath('openssl'), ['x509', '-text', '-noout', '-in', file]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function verify(caPem: string, leafPem: string, purpose: string): Promise<string> {
  const caFile = join(dir, `ca-${Math.random().toString(36).slice(2)}.pem`);
  const leafFile = join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  await writeFile(caFile, caPem);
  await writeFile(leafFile, leafPem);
  const r = await run(peerPath('openssl'), [
    'verify',
    '-x509_strict',
    '-purpose',
    purpose,
    '-CAfile',
    caFile,
    leafFile,
  ]);
  return r.stdout + r.stderr;
}

describeWithPeers(['openssl'], 'openssl x509 -text on issued certificates', () => {
  it('shows a CA with CA:TRUE, certificate signing usage and ECDSA SHA-256', async () => {
    const text = await x509Text(ca.cert);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).toMatch(/Subject: CN = Cert Test CA, O = Acme Dev/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/NIST CURVE: P-256/);
  });

  it('shows a server leaf with the SANs, server usage, AKI matching the CA SKI', async () => {
    const leaf = await issueCertificate(ca, {
      dnsNames: ['localhost', 'App.Example.COM', '*.dev.example.com'],
      ipAddresses: ['127.0.0.1', '::1', '2001:db8:0:0:0:0:0:1'],
    });
    const text = await x509Text(leaf.cert);
    expect(text).toMatch(
      /X509v3 Subject Alternative Name:\s*\n\s*DNS:localhost, DNS:app.example.com, DNS:\*.dev.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:1/,
    );
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\n/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    const caSki = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(await x509Text(ca.cert))?.[1];
    expect(caSki).toBeDefined();
    expect(text).toContain(`X509v3 Authority Key Identifier: \n                ${caSki}`);
    expect(await verify(ca.cert, leaf.cert, 'sslserver')).toMatch(/: OK/);
  });

  it('shows a client leaf with client usage only, so it cannot serve TLS', async () => {
    const leaf = await issueCertificate(ca, {
      usage: 'client',
      commonName: 'alice',
      emails: ['alice@example.com'],
    });
    const text = await x509Text(leaf.cert);
    expect(text).toMatch(/Subject: CN = alice/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Client Authentication\n/);
    expect(text).toMatch(/email:alice@example.com/);
    expect(await verify(ca.cert, leaf.cert, 'sslclient')).toMatch(/: OK/);
    expect(await verify(ca.cert, leaf.cert, 'sslserver')).toMatch(
      /error 26 at 0 depth|unsupported certificate purpose/,
    );
  });

  it('signs with RSA (sha256WithRSAEncryption + keyEncipherment) and P-384 (ecdsa-with-SHA384)', async () => {
    const rsaCa = await createCA({ keyType: 'RSA-2048', name: 'RSA CA' });
    const rsaLeaf = await issueCertificate(rsaCa, { dnsNames: ['rsa.test'], keyType: 'RSA-3072' });
    const rsaText = await x509Text(rsaLeaf.cert);
    expect(rsaText).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    expect(rsaText).toMatch(/Public-Key: \(3072 bit\)/);
    expect(rsaText).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(await verify(rsaCa.cert, rsaLeaf.cert, 'sslserver')).toMatch(/: OK/);

    const p384 = await createCA({ keyType: 'P-384' });
    const p384Leaf = await issueCertificate(p384, { dnsNames: ['p384.test'] });
    expect(await x509Text(p384Leaf.cert)).toMatch(/Signature Algorithm: ecdsa-with-SHA384/);
    expect(await verify(p384.cert, p384Leaf.cert, 'sslserver')).toMatch(/: OK/);
  });

  it('makes a self-signed certificate that verifies against itself', async () => {
    const ss = await selfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const text = await x509Text(ss.cert);
    expect(text).toMatch(/Issuer: CN = localhost\n\s+Validity/);
    expect(text).toMatch(/DNS:localhost, IP Address:127.0.0.1/);
    expect(ss.caCert).toBe(ss.cert);
    expect(await verify(ss.cert, ss.cert, 'sslserver')).toMatch(/: OK/);
  });
});

describe('certificate facts', () => {
  it('uses random positive 128-bit serial numbers', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const leaf = await issueCertificate(ca, { dnsNames: ['s.test'] });
      expect(leaf.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
      serials.add(leaf.serialNumber);
    }
    expect(serials.size).toBe(8);
  });

  it('reports fingerprints and pins that match Node and the certificate', async () => {
    const leaf = await issueCertificate(ca, { dnsNames: ['fp.test'] });
    const node = new X509Certificate(leaf.cert);
    expect(leaf.fingerprint256).toBe(node.fingerprint256);
    expect(fingerprint256(node.raw)).toBe(node.fingerprint256);
    expect(spkiPin(leaf.cert)).toBe(leaf.spkiPin);
    expect(spkiPin(leaf.key)).toBe(leaf.spkiPin);
    expect(node.checkPrivateKey((await import('node:crypto')).createPrivateKey(leaf.key))).toBe(true);
  });

  itWithPeers(
    ['openssl'],
    'computes the same fingerprint and SPKI pin as the openssl command line',
    async () => {
      const openssl = peerPath('openssl');
      const leaf = await issueCertificate(ca, { dnsNames: ['pin.test'] });
      const file = join(dir, 'pin.pem');
      await writeFile(file, leaf.cert);
      const fp = await run(peerPath('openssl'), ['x509', '-noout', '-fingerprint', '-sha256', '-in', file]);
      expect(fp.stdout.trim()).toBe(`sha256 Fingerprint=${leaf.fingerprint256}`);
      // The peer path goes in as "$0" so the shell never parses it.
      const pin = await run('sh', [
        '-c',
        `"$0" x509 -in '${file}' -pubkey -noout | "$0" pkey -pubin -outform der | "$0" dgst -sha256 -binary | base64`,
        openssl,
      ]);
      expect(pin.stdout.trim()).toBe(leaf.spkiPin);
    },
  );

  it('saves a key pair atomically with a private key mode and loads it back checked', async () => {
    const { loadKeyPair, saveKeyPair, readPemFile } = await import('../src/index.js');
    const { stat } = await import('node:fs/promises');
    const leaf = await issueCertificate(ca, { dnsNames: ['save.test'] });
    const paths = { certPath: join(dir, 'save.pem'), keyPath: join(dir, 'save-key.pem') };
    await saveKeyPair(leaf, paths);
    expect((await stat(paths.keyPath)).mode & 0o777).toBe(0o600);
    const loaded = await loadKeyPair(paths, { rejectExpired: true });
    expect(loaded.keyType).toBe('P-256');
    expect(loaded.leaf.fingerprint256).toBe(leaf.fingerprint256);
    await expect(readPemFile(paths.certPath, { maxBytes: 100 })).rejects.toThrow(/maxBytes/);
    await writeFile(paths.keyPath, (await createCA()).key);
    await expect(loadKeyPair(paths)).rejects.toBeInstanceOf(KeyMismatchError);
  });

  it('backdates notBefore a little and defaults to one year of validity', async () => {
    const leaf = await issueCertificate(ca, { dnsNames: ['v.test'] });
    const now = Date.now();
    expect(leaf.notBefore.getTime()).toBeLessThan(now);
    expect(leaf.notBefore.getTime()).toBeGreaterThan(now - 5 * 60_000);
    const days = (leaf.notAfter.getTime() - now) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
  });

  it('never lets a leaf outlive its CA', async () => {
    const shortCa = await createCA({ validityDays: 2 });
    const leaf = await issueCertificate(shortCa, { dnsNames: ['x.test'], validityDays: 365 });
    expect(leaf.notAfter.getTime()).toBe(shortCa.notAfter.getTime());
  });

  it('stores internationalized names as punycode, which is what TLS clients compare', async () => {
    const leaf = await issueCertificate(ca, { dnsNames: ['bücher.example', '*.münchen.example'] });
    expect(subjectAltNames(leaf.cert).dnsNames).toEqual([
      'xn--bcher-kva.example',
      '*.xn--mnchen-3ya.example',
    ]);
  });

  it('reads SANs back, IPv6 in canonical form', async () => {
    const leaf = await issueCertificate(ca, {
      dnsNames: ['a.test'],
      ipAddresses: ['0:0:0:0:0:0:0:1', '10.0.0.1'],
      uris: ['spiffe://example.org/a'],
    });
    expect(subjectAltNames(leaf.cert)).toEqual({
      dnsNames: ['a.test'],
      ipAddresses: ['::1', '10.0.0.1'],
      emails: [],
      uris: ['spiffe://example.org/a'],
    });
  });

  it('issues from a CA loaded back from PEM (a plain { cert, key } object)', async () => {
    const loaded = { cert: ca.cert, key: ca.key };
    const leaf = await issueCertificate(loaded, { dnsNames: ['pem.test'] });
    expect(await verify(ca.cert, leaf.cert, 'sslserver')).toMatch(/: OK/);
  });
});

describe('subjectAltName round trip (property)', () => {
  it('reads back exactly the names it was given, normalized', async () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    const dns = fc
      .tuple(fc.boolean(), fc.array(label, { minLength: 2, maxLength: 4 }))
      .map(([wild, labels]) => (wild ? `*.${labels.join('.')}` : labels.join('.')))
      .filter((n) => !/^[0-9.]+$/.test(n.replace('*.', '')));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(dns, { maxLength: 4 }),
        fc.uniqueArray(fc.ipV4(), { maxLength: 2 }),
        fc.uniqueArray(fc.ipV6(), { maxLength: 2 }),
        async (dnsNames, v4, v6) => {
          fc.pre(dnsNames.length + v4.length + v6.length > 0);
          const leaf = await issueCertificate(ca, {
            dnsNames: dnsNames.map((n) => n.toUpperCase()),
            ipAddresses: [...v4, ...v6],
          });
          const names = subjectAltNames(leaf.cert);
          expect(names.dnsNames).toEqual(dnsNames);
          expect(names.ipAddresses).toEqual([
            ...v4,
            ...v6.map((ip) => new URL(`http://[${ip}]`).hostname.slice(1, -1)),
          ]);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('bad input gets a clear error', () => {
  it.each([
    [{ dnsNames: ['exa mple.com'] }, /invalid DNS name/],
    [{ dnsNames: ['-bad.com'] }, /invalid DNS name/],
    [{ dnsNames: ['*.com'] }, /wildcard/],
    [{ dnsNames: ['a.*.com'] }, /invalid DNS name/],
    [{ dnsNames: ['127.0.0.1'] }, /put it in ipAddresses/],
    [{ dnsNames: ['x'.repeat(300)] }, /1..253/],
    [{ ipAddresses: ['256.1.1.1'] }, /invalid IP address/],
    [{ ipAddresses: ['fe80::1%eth0'] }, /invalid IP address/],
    [{ emails: ['nope'] }, /invalid email/],
    [{ uris: ['not a uri'] }, /invalid URI/],
    [{}, /needs at least one/],
    [{ dnsNames: ['a.test'], validityDays: 0 }, /validityDays/],
    [{ dnsNames: ['a.test'], validityDays: Number.NaN }, /validityDays/],
    [{ dnsNames: ['a.test'], keyType: 'P-521' }, /keyType must be one of/],
    [{ dnsNames: ['a.test'], usage: 'code' }, /usage must be/],
    [{ dnsNames: ['a.test'], commonName: 'x\u0000y' }, /common name/],
    [{ dnsNames: ['a.test'], notBefore: new Date(), notAfter: new Date(0) }, /notAfter/],
  ])('rejects %j', async (options, message) => {
    const err = await issueCertificate(ca, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).code).toBe('ERR_SECURITY_INVALID_OPTION');
    expect(String((err as Error).message)).toMatch(message);
  });

  it('refuses to issue from a non-CA certificate', async () => {
    const leaf = await issueCertificate(ca, { dnsNames: ['leaf.test'] });
    await expect(issueCertificate(leaf, { dnsNames: ['x.test'] })).rejects.toThrow(/not a CA/);
  });

  it('refuses a CA whose key does not match its certificate', async () => {
    const other = await createCA();
    await expect(
      issueCertificate({ cert: ca.cert, key: other.key }, { dnsNames: ['x.test'] }),
    ).rejects.toBeInstanceOf(KeyMismatchError);
  });

  it('refuses garbage as a CA', async () => {
    await expect(issueCertificate({ cert: 'nope', key: 'nope' }, { dnsNames: ['x.test'] })).rejects.toThrow(
      /no CERTIFICATE block/,
    );
    await expect(
      issueCertificate({ cert: ca.cert, key: 'nope' }, { dnsNames: ['x.test'] }),
    ).rejects.toBeInstanceOf(CertificateParseError);
  });
});
