import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import {
  generateSecret,
  InvalidOptionError,
  TokenError,
  TokenExpiredError,
  TokenMalformedError,
  TokenNotYetValidError,
  TokenSignatureError,
  TokenSigner,
  TokenUnknownKeyError,
} from '../src/index.js';

const k1 = { kid: 'k1', secret: generateSecret() };
const k2 = { kid: 'k2', secret: generateSecret() };

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('signed expiring tokens', () => {
  it('round-trips claims and adds iat/exp', () => {
    const c = clock();
    const signer = new TokenSigner({ keys: [k1], now: c.now });
    const token = signer.sign({ sub: 'alice', room: 'general' }, { ttlSeconds: 60 });
    expect(token).toMatch(/^v1\.k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const claims = signer.verify<{ sub: string; room: string }>(token);
    expect(claims).toEqual({ sub: 'alice', room: 'general', iat: 1_700_000_000, exp: 1_700_000_060 });
  });

  it('rotates keys: new tokens use the first key, old tokens verify until the key is dropped', () => {
    const old = new TokenSigner({ keys: [k1] });
    const oldToken = old.sign({ sub: 'a' });
    const rotated = new TokenSigner({ keys: [k2, k1] });
    expect(rotated.verify(oldToken).sub).toBe('a');
    expect(rotated.sign({}).startsWith('v1.k2.')).toBe(true);
    const dropped = new TokenSigner({ keys: [k2] });
    expect(() => dropped.verify(oldToken)).toThrow(TokenUnknownKeyError);
    expect(() => new TokenSigner({ keys: [{ kid: 'k1', secret: k2.secret }] }).verify(oldToken)).toThrow(
      TokenSignatureError,
    );
  });

  itFuzz('property: a token with any single character changed never verifies', async () => {
    const signer = new TokenSigner({ keys: [k1, k2] });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    await fuzz(
      'security-tokens-1',
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
        fc.nat(),
        fc.constantFrom(...alphabet),
        (claims, at, ch) => {
          fc.pre(!('iat' in claims || 'exp' in claims || 'nbf' in claims));
          const token = signer.sign(claims);
          const i = at % token.length;
          fc.pre(token[i] !== ch);
          const tampered = token.slice(0, i) + ch + token.slice(i + 1);
          expect(() => signer.verify(tampered)).toThrow(TokenError);
        },
      ),
      { numRuns: 500 },
    );
  });

  itFuzz('property: arbitrary strings never verify and never throw anything but TokenError', async () => {
    const signer = new TokenSigner({ keys: [k1] });
    await fuzz(
      'security-tokens-2',
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.tuple(fc.string(), fc.string(), fc.string()).map((p) => `v1.k1.${p.join('.')}`),
          fc.string({ minLength: 43, maxLength: 43 }).map((s) => `v1.k1.e30.${s}`),
        ),
        (s) => {
          expect(() => signer.verify(s)).toThrow(TokenError);
        },
      ),
      { numRuns: 500 },
    );
  });

  itFuzz('property: expired tokens never verify', async () => {
    await fuzz(
      'security-tokens-3',
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 1e9 }), (ttl, after) => {
        const c = clock();
        const signer = new TokenSigner({ keys: [k1], now: c.now });
        const token = signer.sign({ sub: 'x' }, { ttlSeconds: ttl });
        c.advance(ttl * 1000 + after);
        expect(() => signer.verify(token)).toThrow(TokenExpiredError);
      }),
      { numRuns: 200 },
    );
  });

  it('accepts a token until its expiry second and honours clock skew and nbf', () => {
    const c = clock();
    const signer = new TokenSigner({ keys: [k1], now: c.now, clockSkewSeconds: 5 });
    const token = signer.sign({}, { ttlSeconds: 10, notBefore: new Date(c.now() + 60_000) });
    expect(() => signer.verify(token)).toThrow(TokenNotYetValidError);
    c.advance(56_000);
    expect(() => signer.verify(token)).toThrow(TokenExpiredError); // exp is iat + 10 s
    const c2 = clock();
    const s2 = new TokenSigner({ keys: [k1], now: c2.now, clockSkewSeconds: 5 });
    const t2 = s2.sign({}, { ttlSeconds: 10 });
    c2.advance(14_999);
    expect(s2.verify(t2).exp).toBe(1_700_000_010);
    c2.advance(1);
    expect(() => s2.verify(t2)).toThrow(TokenExpiredError);
  });

  it('rejects oversized, malformed and non-canonical tokens before doing work', () => {
    const signer = new TokenSigner({ keys: [k1], maxTokenLength: 200 });
    expect(() => signer.verify('x'.repeat(201))).toThrow(TokenMalformedError);
    expect(() => signer.verify('')).toThrow(TokenMalformedError);
    expect(() => signer.verify(42 as never)).toThrow(TokenMalformedError);
    const token = signer.sign({});
    // The last base64url character of a 32-byte value carries 2 spare bits: flipping them must fail.
    const last = token.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const idx = alphabet.indexOf(last);
    const twin = alphabet[idx ^ 1]!;
    expect(() => signer.verify(token.slice(0, -1) + twin)).toThrow(TokenError);
  });

  it('refuses weak secrets, bad key ids and reserved claims', () => {
    expect(() => new TokenSigner({ keys: [{ kid: 'a', secret: 'short' }] })).toThrow(/at least 32/);
    expect(() => new TokenSigner({ keys: [{ kid: 'bad kid', secret: generateSecret() }] })).toThrow(
      InvalidOptionError,
    );
    expect(() => new TokenSigner({ keys: [] })).toThrow(InvalidOptionError);
    expect(() => new TokenSigner({ keys: [k1, k1] })).toThrow(/duplicate/);
    expect(() => new TokenSigner({ keys: [k1], signingKid: 'nope' })).toThrow(/signingKid/);
    expect(() => new TokenSigner({ keys: [k1] }).sign({ exp: 1 })).toThrow(/use options/);
  });
});
