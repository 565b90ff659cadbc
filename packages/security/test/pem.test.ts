import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { createCA, PemError, parsePem, splitCertificates, toPem } from '../src/index.js';

const label = fc.stringMatching(/^[A-Z0-9]([A-Z0-9 ]{0,20}[A-Z0-9])?$/);
const blocks = fc.array(fc.record({ type: label, der: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 5 });

describe('PEM codec', () => {
  itFuzz('round-trips any labels and bytes, with any explanatory text around blocks', async () => {
    await fuzz(
      'security-pem-1',
      fc.property(
        blocks,
        fc.array(fc.stringMatching(/^[a-z ]{0,30}$/), { minLength: 6, maxLength: 6 }),
        (bs, gaps) => {
          const text = bs.map((b, i) => `${gaps[i]}\n${toPem(b.type, b.der)}`).join('');
          const parsed = parsePem(`${text}${gaps[5]}`);
          expect(parsed.map((p) => p.type)).toEqual(bs.map((b) => b.type));
          parsed.forEach((p, i) => {
            expect(Buffer.compare(p.der, Buffer.from(bs[i]!.der))).toBe(0);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  itFuzz('accepts CRLF line endings and indentation', async () => {
    await fuzz(
      'security-pem-2',
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (der) => {
        const crlf = toPem('CERTIFICATE', der).replace(/\n/g, '\r\n  ');
        expect(Buffer.compare(parsePem(crlf)[0]!.der, Buffer.from(der))).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  itFuzz('never throws anything but PemError on arbitrary input, and never hangs', async () => {
    const pemish = fc.oneof(
      fc.string({ maxLength: 500 }),
      fc
        .tuple(fc.uint8Array({ maxLength: 100 }), fc.nat({ max: 400 }), fc.string({ maxLength: 5 }))
        .map(([der, at, junk]) => {
          const s = toPem('CERTIFICATE', der);
          return s.slice(0, at) + junk + s.slice(at);
        }),
    );
    await fuzz(
      'security-pem-3',
      fc.property(pemish, (input) => {
        try {
          parsePem(input);
        } catch (err) {
          expect(err).toBeInstanceOf(PemError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('rejects truncated, mismatched, non-base64 and encrypted blocks with a clear error', () => {
    const good = toPem('CERTIFICATE', Buffer.from('hello world'));
    expect(() => parsePem(good.replace('-----END CERTIFICATE-----\n', ''))).toThrow(/unterminated/);
    expect(() => parsePem(good.replace('END CERTIFICATE', 'END PRIVATE KEY'))).toThrow(/does not close/);
    expect(() => parsePem(good.replace('aGVs', 'a*Vs'))).toThrow(/invalid base64/);
    expect(() => parsePem(good.replace('aGVs', 'aGV'))).toThrow(/not valid base64/);
    expect(() =>
      parsePem(
        '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n',
      ),
    ).toThrow(/encrypted/);
  });

  it('bounds input size and block count', () => {
    const one = toPem('CERTIFICATE', Buffer.alloc(10));
    expect(() => parsePem(one.repeat(3), { maxBlocks: 2 })).toThrow(/maxBlocks/);
    expect(() => parsePem('x'.repeat(2000), { maxBytes: 1000 })).toThrow(/maxBytes/);
  });

  it('splits a chain into its certificates', async () => {
    const a = await createCA();
    const b = await createCA();
    const chain = `${a.cert}${toPem('PRIVATE KEY', Buffer.alloc(4))}${b.cert}`;
    expect(splitCertificates(chain)).toEqual([a.cert, b.cert]);
    expect(() => splitCertificates(a.key)).toThrow(/no CERTIFICATE/);
  });
});
