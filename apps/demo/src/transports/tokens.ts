import { generateSecret, TokenSigner } from '@net/security';
import type { TokenIssuer } from './auth.js';

/**
 * Login tokens signed with @net/security's TokenSigner (HMAC-SHA256, 15 minutes). The secret is
 * random per process, so a restart invalidates tokens; clients get a fresh one on every connect.
 */
export function createTokenIssuer(secret = generateSecret()): TokenIssuer {
  const signer = new TokenSigner({ keys: [{ kid: 'chat', secret }], defaultTtlSeconds: 15 * 60 });
  return {
    issue: (nick) => signer.sign({ nick }),
    verify(token) {
      try {
        const claims = signer.verify<{ nick?: unknown }>(token);
        return typeof claims.nick === 'string' ? claims.nick : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
