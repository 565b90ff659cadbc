/** Issues and checks the signed login tokens used by POST /api/rooms/:room/messages. */
export interface TokenIssuer {
  /** `sid`: the session asking, so HTTP posts are rate limited per session whatever the nick. */
  issue(nick: string, sid?: string): string;
  /** The nickname the token was issued to, or undefined when it is forged or expired. */
  verify(token: string): string | undefined;
  /** Nickname and issuing session of a valid token. */
  claims?(token: string): { nick: string; sid?: string } | undefined;
}
