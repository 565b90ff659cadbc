import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { InvalidOptionError, originCheck } from '../src/index.js';

describe('origin allowlist', () => {
  const check = originCheck([
    'https://chat.example.com',
    'https://*.apps.example.com',
    'http://localhost:*',
    'https://example.com:8443',
  ]);

  it.each([
    ['https://chat.example.com', true],
    ['https://CHAT.example.com', true],
    ['https://chat.example.com:443', true],
    ['http://chat.example.com', false],
    ['https://chat.example.com:444', false],
    ['https://chat.example.com.evil.com', false],
    ['https://evilchat.example.com', false],
    ['https://a.apps.example.com', true],
    ['https://a.b.apps.example.com', true],
    ['https://apps.example.com', false],
    ['https://evil-apps.example.com', false],
    ['https://xapps.example.com', false],
    ['http://a.apps.example.com', false],
    ['http://localhost:5173', true],
    ['http://localhost', true],
    ['https://localhost:5173', false],
    ['https://example.com:8443', true],
    ['https://example.com', false],
    ['https://chat.example.com/', false],
    ['https://chat.example.com/path', false],
    ['https://user@chat.example.com', false],
    ['null', false],
    ['', false],
    ['chat.example.com', false],
    ['javascript:alert(1)', false],
  ])('%s → %s', (origin, expected) => {
    expect(check(origin)).toBe(expected);
  });

  it('refuses a missing Origin unless allowMissing', () => {
    expect(check(undefined)).toBe(false);
    expect(originCheck([], { allowMissing: true })(undefined)).toBe(true);
  });

  it("accepts the opaque 'null' origin only when listed explicitly", () => {
    expect(originCheck(['null'])('null')).toBe(true);
    expect(originCheck(['https://a.test'])('null')).toBe(false);
  });

  it('normalizes IDN and IPv6 entries the way browsers serialize origins', () => {
    expect(originCheck(['https://bücher.example'])('https://xn--bcher-kva.example')).toBe(true);
    expect(originCheck(['http://[::1]:8080'])('http://[::1]:8080')).toBe(true);
  });

  it('rejects malformed allowlist entries at construction', () => {
    for (const bad of ['example.com', 'https://*.com', 'https://*', 'https://a.test/path', '*']) {
      expect(() => originCheck([bad])).toThrow(InvalidOptionError);
    }
  });

  itFuzz('property: a wildcard never matches a host outside the suffix', async () => {
    const wild = originCheck(['https://*.example.com']);
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    await fuzz(
      'security-origin-1',
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 4 }),
        fc.string({ maxLength: 30 }),
        (labels, junk) => {
          const host = labels.join('.');
          expect(wild(`https://${host}.example.com`)).toBe(true);
          const other = `https://${host}example.com${junk}`;
          const parsed = URL.canParse(other) ? new URL(other) : undefined;
          const legit = parsed?.hostname.endsWith('.example.com') && other === parsed.origin;
          expect(wild(other)).toBe(Boolean(legit));
        },
      ),
      { numRuns: 300 },
    );
  });

  itFuzz('property: arbitrary strings never throw', async () => {
    await fuzz(
      'security-origin-2',
      fc.property(fc.string({ maxLength: 3000 }), (s) => {
        expect(typeof check(s)).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });
});
