import { type ChatCore, ChatError, type Session } from '../chat/index.js';
import type { SessionTokenSigner } from '../chat/identity.js';

/**
 * Issues and checks the signed tokens of the HTTP API. Two kinds:
 * - a login token `{nick, ls}`: bound to a login session (`ls`), expiring with it; live while the
 *   session exists in the store;
 * - a guest token `{nick, sid}`: bound to the connection that asked for it (`sid` is the owner of
 *   its nickname claim in the store); live while that connection still holds that name.
 */
export interface TokenIssuer extends Partial<SessionTokenSigner> {
  /** A guest token; `sid`: the nickname claim's owner (the asking connection). */
  issue(nick: string, sid?: string): string;
  /** The nickname the token was issued to, or undefined when it is forged or expired. */
  verify(token: string): string | undefined;
  /** Nickname and issuing session of a valid token. */
  claims?(token: string): { nick: string; sid?: string } | undefined;
}

/** Who a live token speaks for. */
export interface TokenIdentity {
  readonly nick: string;
  /** Set for login tokens. */
  readonly account?: string;
  /** Rate-limit key: the login session or the guest connection. */
  readonly sid: string;
}

/** The token a connection gets (welcome, /token, nick change): its login's, else a guest token. */
export function tokenFor(core: ChatCore, tokens: TokenIssuer, session: Session): string | undefined {
  const login = session.loginSession;
  if (login) return core.identity.tokenFor(login);
  if (core.identity.guests === 'off') return undefined;
  return tokens.issue(session.nick, core.store.nickOwner(session.id));
}

/**
 * Check a bearer token against the live state, not only its signature: a login token needs its
 * session in the store (SESSION_ENDED after logout, a password change, an admin revocation or
 * expiry); a guest token needs its connection still holding its nickname.
 */
export async function authenticate(
  core: ChatCore,
  tokens: TokenIssuer,
  token: string,
): Promise<TokenIdentity> {
  const claims = tokens.open?.(token);
  if (!claims) throw new ChatError('UNAUTHORIZED', 'the token is not valid (forged, malformed or expired)');
  const nick = claims.nick;
  if (typeof claims.ls === 'string') {
    const session = await core.identity.live(claims.ls);
    return { nick: session.account, account: session.account, sid: `ls:${session.id}` };
  }
  if (typeof nick !== 'string' || typeof claims.sid !== 'string') {
    throw new ChatError('UNAUTHORIZED', 'the token is not valid (forged, malformed or expired)');
  }
  if (core.identity.guests === 'off') {
    throw new ChatError('LOGIN_REQUIRED', 'this server needs an account: POST /api/login');
  }
  if (!(await core.store.nickHeldBy(nick, claims.sid))) {
    throw new ChatError(
      'SESSION_ENDED',
      'the connection this guest token belongs to has closed or changed its name; get a new token',
    );
  }
  return { nick, sid: claims.sid };
}
