import { generateSecret, TokenSigner } from '@net/security';
import type { TokenIssuer } from './auth.js';

/**
 * Tokens signed with @net/security's TokenSigner (HMAC-SHA256). Guest tokens live 15 minutes;
 * login tokens expire with their session. The secret is random per process with the file store
 * (a restart invalidates tokens) and shared through Redis otherwise.
 */
export function createTokenIssuer(secret = generateSecret()): TokenIssuer {
  const signer = new TokenSigner({ keys: [{ kid: 'chat', secret }], defaultTtlSeconds: 15 * 60 });
  const open = (token: string): Record<string, unknown> | undefined => {
    try {
      return signer.verify<Record<string, unknown>>(token);
    } catch {
      return undefined;
    }
  };
  const claims = (token: string): { nick: string; sid?: string } | undefined => {
    const c = open(token);
    if (!c || typeof c.nick !== 'string') return undefined;
    return typeof c.sid === 'string' ? { nick: c.nick, sid: c.sid } : { nick: c.nick };
  };
  return {
    issue: (nick, sid) => signer.sign(sid === undefined ? { nick } : { nick, sid }),
    verify: (token) => claims(token)?.nick,
    claims,
    sign: (c, ttlSeconds) => signer.sign(c, { ttlSeconds }),
    open,
  };
}
