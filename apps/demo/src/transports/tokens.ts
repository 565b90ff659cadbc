import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenIssuer } from './auth.js';

/**
 * HMAC-SHA256 login tokens: base64url(JSON {n: nick, e: expiry ms}) "." base64url(mac).
 * The key is random per process, so a restart invalidates every token (clients get a new one on
 * connect).
 */
export class HmacTokens implements TokenIssuer {
  private readonly key: Buffer;
  private readonly ttlMs: number;

  constructor(options: { key?: Buffer; ttlMs?: number } = {}) {
    this.key = options.key ?? randomBytes(32);
    this.ttlMs = options.ttlMs ?? 15 * 60_000;
  }

  issue(nick: string): string {
    const body = Buffer.from(JSON.stringify({ n: nick, e: Date.now() + this.ttlMs })).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  verify(token: string): string | undefined {
    if (token.length > 512) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = Buffer.from(this.mac(body), 'base64url');
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    try {
      const v = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { n?: unknown; e?: unknown };
      if (typeof v.n !== 'string' || typeof v.e !== 'number' || v.e < Date.now()) return undefined;
      return v.n;
    } catch {
      return undefined;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
