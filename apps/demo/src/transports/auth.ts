/** Issues and checks the signed login tokens used by POST /api/rooms/:room/messages. */
export interface TokenIssuer {
  issue(nick: string): string;
  /** The nickname the token was issued to, or undefined when it is forged or expired. */
  verify(token: string): string | undefined;
}
