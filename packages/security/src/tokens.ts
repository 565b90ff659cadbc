import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  InvalidOptionError,
  TokenExpiredError,
  TokenMalformedError,
  TokenNotYetValidError,
  TokenSignatureError,
  TokenUnknownKeyError,
} from './errors.js';
import type { TokenSignerOptions } from './options.js';

/** Time claims every token carries (seconds since the epoch). */
export interface TokenTimes {
  /** Issued at. */
  iat: number;
  /** Expires at: the token is refused from this second on. */
  exp: number;
  /** Not before, when `sign()` was given `notBefore`. */
  nbf?: number;
}

/** Per-token options of `sign()`. */
export interface SignOptions {
  /** Lifetime in seconds. @default the signer's `defaultTtlSeconds` (3600) */
  ttlSeconds?: number;
  /** The token is refused before this time. */
  notBefore?: Date;
}

const VERSION = 'v1';
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const SIG_CHARS = 43; // 32-byte HMAC-SHA256 in unpadded base64url
const RESERVED = ['iat', 'exp', 'nbf'];
const MIN_SECRET_BYTES = 32;

/** 32 random bytes as base64url: a fresh secret for a `TokenKey`. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Compact signed, expiring tokens: `v1.<kid>.<base64url JSON>.<base64url HMAC-SHA256>`. The HMAC
 * covers version, key id and payload. Several keys verify so secrets can rotate: sign with the
 * new key, keep the old one until its tokens have expired, then drop it. Payloads are signed,
 * not encrypted: do not put secrets in claims.
 */
export class TokenSigner {
  readonly #keys = new Map<string, Buffer>();
  readonly #signingKid: string;
  readonly #ttl: number;
  readonly #skew: number;
  readonly #maxLength: number;
  readonly #now: () => number;

  constructor(options: TokenSignerOptions) {
    if (!options || !Array.isArray(options.keys) || options.keys.length === 0) {
      throw new InvalidOptionError('TokenSigner needs at least one key { kid, secret }');
    }
    for (const { kid, secret } of options.keys) {
      if (typeof kid !== 'string' || !KID.test(kid)) {
        throw new InvalidOptionError(
          `key id ${JSON.stringify(kid)} must be 1..32 characters of [A-Za-z0-9_-]`,
        );
      }
      const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret ?? []);
      if (bytes.length < MIN_SECRET_BYTES) {
        throw new InvalidOptionError(
          `secret of key ${kid} is ${bytes.length} bytes; at least ${MIN_SECRET_BYTES} required`,
        );
      }
      if (this.#keys.has(kid)) throw new InvalidOptionError(`duplicate key id ${kid}`);
      this.#keys.set(kid, bytes);
    }
    this.#signingKid = options.signingKid ?? options.keys[0]!.kid;
    if (!this.#keys.has(this.#signingKid)) {
      throw new InvalidOptionError(`signingKid ${this.#signingKid} is not one of the keys`);
    }
    this.#ttl = options.defaultTtlSeconds ?? 3600;
    this.#skew = options.clockSkewSeconds ?? 0;
    this.#maxLength = options.maxTokenLength ?? 4096;
    if (!(this.#ttl > 0) || !(this.#skew >= 0) || !(this.#maxLength >= 64)) {
      throw new InvalidOptionError(
        'defaultTtlSeconds > 0, clockSkewSeconds >= 0 and maxTokenLength >= 64 required',
      );
    }
    this.#now = options.now ?? Date.now;
  }

  #mac(secret: Buffer, signingInput: string): Buffer {
    return createHmac('sha256', secret).update(signingInput).digest();
  }

  /** Signs `claims` (a JSON object) with the current key. `iat`/`exp`/`nbf` are added here. */
  sign(claims: Readonly<Record<string, unknown>> = {}, options: SignOptions = {}): string {
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      throw new InvalidOptionError('token claims must be a plain object');
    }
    for (const name of RESERVED) {
      if (Object.hasOwn(claims, name))
        throw new InvalidOptionError(`claim ${name} is set by sign(); use options`);
    }
    const ttl = options.ttlSeconds ?? this.#ttl;
    if (typeof ttl !== 'number' || !(ttl > 0) || !Number.isFinite(ttl)) {
      throw new InvalidOptionError(`ttlSeconds must be a positive number, got ${String(ttl)}`);
    }
    const iat = Math.floor(this.#now() / 1000);
    const body: Record<string, unknown> = { ...claims, iat, exp: iat + Math.ceil(ttl) };
    if (options.notBefore !== undefined) {
      if (!(options.notBefore instanceof Date) || Number.isNaN(options.notBefore.getTime())) {
        throw new InvalidOptionError('notBefore must be a valid Date');
      }
      body.nbf = Math.floor(options.notBefore.getTime() / 1000);
    }
    const payload = Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
    const signingInput = `${VERSION}.${this.#signingKid}.${payload}`;
    const token = `${signingInput}.${this.#mac(this.#keys.get(this.#signingKid)!, signingInput).toString('base64url')}`;
    if (token.length > this.#maxLength) {
      throw new InvalidOptionError(
        `token of ${token.length} characters exceeds maxTokenLength ${this.#maxLength}`,
      );
    }
    return token;
  }

  /**
   * Verifies signature (constant time), then expiry; returns the claims. Throws a `TokenError`
   * subclass: malformed, unknown key, bad signature, expired, not yet valid.
   */
  verify<T extends object = Record<string, unknown>>(token: string): T & TokenTimes {
    if (typeof token !== 'string' || token.length === 0)
      throw new TokenMalformedError('token must be a non-empty string');
    if (token.length > this.#maxLength) {
      throw new TokenMalformedError(`token longer than maxTokenLength ${this.#maxLength}`);
    }
    const dot3 = token.lastIndexOf('.');
    const parts = token.split('.', 5);
    if (parts.length !== 4 || parts[0] !== VERSION) {
      throw new TokenMalformedError('token must look like v1.<kid>.<payload>.<signature>');
    }
    const [, kid, payload, sig] = parts as [string, string, string, string];
    if (!KID.test(kid) || !B64URL.test(payload) || sig.length !== SIG_CHARS || !B64URL.test(sig)) {
      throw new TokenMalformedError('token has an invalid key id, payload or signature encoding');
    }
    const secret = this.#keys.get(kid);
    if (!secret) throw new TokenUnknownKeyError(kid);
    const given = Buffer.from(sig, 'base64url');
    // Reject non-canonical encodings (the spare low bits of the last character) so that exactly one
    // string is valid per token.
    if (given.length !== 32 || given.toString('base64url') !== sig) {
      throw new TokenMalformedError('token signature is not canonical base64url');
    }
    if (!timingSafeEqual(given, this.#mac(secret, token.slice(0, dot3)))) throw new TokenSignatureError();
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw new TokenMalformedError('token payload is not JSON');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new TokenMalformedError('token payload is not a JSON object');
    }
    const { exp, nbf, iat } = body as Record<string, unknown>;
    if (
      typeof exp !== 'number' ||
      typeof iat !== 'number' ||
      (nbf !== undefined && typeof nbf !== 'number')
    ) {
      throw new TokenMalformedError('token payload lacks numeric iat/exp');
    }
    const now = this.#now() / 1000;
    if (now >= exp + this.#skew) throw new TokenExpiredError(exp);
    if (nbf !== undefined && now + this.#skew < nbf) throw new TokenNotYetValidError(nbf);
    return body as T & TokenTimes;
  }
}
