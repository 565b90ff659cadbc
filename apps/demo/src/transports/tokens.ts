import { generateSecret, TokenSigner } from '@net/security';
import type { TokenIssuer } from './auth.js';

/**
 * Login tokens signed with @net/security's TokenSigner (HMAC-SHA256, 15 minutes). The secret is
 * random per process, so a restart invalidates tokens; clients get a fresh one on every connect.
 */
export function createTokenIssuer(secret = generateSecret()): TokenIssuer {
  const signer = new TokenSigner({ keys: [{ kid: 'chat', secret }], defaultTtlSeconds: 15 * 60 });
  const claims = (token: string): { nick: string; sid?: string } | undefined => {
    try {
      const c = signer.verify<{ nick?: unknown; sid?: unknown }>(token);
      if (typeof c.nick !== 'string') return undefined;
      return typeof c.sid === 'string' ? { nick: c.nick, sid: c.sid } : { nick: c.nick };
    } catch {
      return undefined;
    }
  };
  return {
    issue: (nick, sid) => signer.sign(sid === undefined ? { nick } : { nick, sid }),
    verify: (token) => claims(token)?.nick,
    claims,
  };
}
