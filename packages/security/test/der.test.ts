import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCertificate } from '../src/cert-reader.js';
import { children, DerError, oid, readNode, readOid, sequence, unsignedInteger } from '../src/der.js';
import { createCA, issueCertificate, subjectAltNames } from '../src/index.js';

describe('DER codec', () => {
  it('round-trips object identifiers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { maxLength: 8 }),
        (a, b, rest) => {
          const dotted = [a, b, ...rest].join('.');
          expect(readOid(readNode(oid(dotted)).contents)).toBe(dotted);
        },
      ),
    );
  });

  it('encodes integers as minimal positive two-complement values', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const node = readNode(unsignedInteger(bytes));
        const value = node.contents;
        expect(value.length).toBeGreaterThan(0);
        expect(value[0]! & 0x80).toBe(0); // never negative
        if (value.length > 1) expect(value[0] === 0 && (value[1]! & 0x80) === 0).toBe(false); // minimal
        expect(BigInt(`0x${value.toString('hex')}`)).toBe(
          BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`),
        );
      }),
    );
  });

  it('reads any bytes to elements or a DerError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          children(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(DerError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses lengths that run past their container and non-minimal lengths', () => {
    expect(() => readNode(Buffer.from([0x30, 0x05, 0x01]))).toThrow(DerError);
    expect(() => readNode(Buffer.from([0x30, 0x81, 0x05, 1, 2, 3, 4, 5]))).toThrow(/non-minimal/);
    expect(() => readNode(Buffer.from([0x30, 0x80, 0, 0]))).toThrow(/indefinite/);
    expect(readNode(sequence()).contents.length).toBe(0);
  });
});

describe('certificates built without an ASN.1 library', () => {
  it('parse every truncation and bit flip of a real certificate to a result or a parse error', async () => {
    const ca = await createCA();
    const leaf = await issueCertificate(ca, { dnsNames: ['a.example'], ipAddresses: ['::1', '10.0.0.1'] });
    const der = new X509Certificate(leaf.cert).raw;
    for (let cut = 0; cut < der.length; cut += 7) {
      expect(() => readCertificate(der.subarray(0, cut))).toThrow(DerError);
    }
    fc.assert(
      fc.property(fc.nat(der.length * 8 - 1), (bit) => {
        const copy = Buffer.from(der);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        try {
          readCertificate(copy);
        } catch (err) {
          expect(err).toBeInstanceOf(DerError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('carries any valid subjectAltName set through issue and decode', async () => {
    const ca = await createCA();
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.tuple(label, label).map(([a, b]) => `${a}.${b}`),
          { minLength: 1, maxLength: 4 },
        ),
        fc.uniqueArray(fc.ipV4(), { maxLength: 3 }),
        fc.uniqueArray(fc.ipV6(), { maxLength: 3 }),
        async (dnsNames, v4, v6) => {
          const leaf = await issueCertificate(ca, { dnsNames, ipAddresses: [...v4, ...v6] });
          const names = subjectAltNames(leaf.cert);
          expect(names.dnsNames).toEqual(dnsNames);
          const canonical = (ip: string) => new URL(`http://[${ip}]/`).hostname.slice(1, -1);
          expect(names.ipAddresses).toEqual([...v4, ...v6.map(canonical)]);
          // node:crypto reads the same names: the encoding is what other parsers expect.
          const text = new X509Certificate(leaf.cert).subjectAltName ?? '';
          for (const name of dnsNames) expect(text).toContain(`DNS:${name}`);
        },
      ),
      { numRuns: 40 },
    );
  });
});
