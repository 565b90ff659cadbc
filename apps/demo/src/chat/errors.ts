/** Stable codes the chat core reports; every transport shows them (PROTOCOL.md lists them). */
export type ChatErrorCode =
  | 'NICK_INVALID'
  | 'NICK_TAKEN'
  | 'ROOM_INVALID'
  | 'NOT_IN_ROOM'
  | 'TOO_MANY_ROOMS'
  | 'ROOM_LIMIT'
  | 'TEXT_EMPTY'
  | 'TEXT_TOO_LONG'
  | 'TEXT_INVALID'
  | 'RATE_LIMITED'
  | 'NO_SUCH_NICK'
  | 'BAD_ID'
  | 'CID_INVALID'
  | 'STORE_FAILED'
  | 'OUTCOME_UNKNOWN'
  | 'ROOM_LIMIT'
  | 'SHUTTING_DOWN'
  // Identity (accounts and login sessions):
  | 'PASSWORD_INVALID'
  | 'NAME_REGISTERED'
  | 'ACCOUNT_EXISTS'
  | 'LOGIN_FAILED'
  | 'NOT_LOGGED_IN'
  | 'ALREADY_LOGGED_IN'
  | 'LOGIN_REQUIRED'
  | 'SESSION_ENDED'
  | 'BUSY'
  | 'UNAUTHORIZED'
  // Private rooms:
  | 'NOT_INVITED'
  | 'NOT_OWNER'
  | 'NOT_PRIVATE'
  | 'NOT_A_MEMBER'
  | 'ROOM_EXISTS'
  | 'NO_SUCH_ACCOUNT';

export class ChatError extends Error {
  readonly code: ChatErrorCode;
  constructor(code: ChatErrorCode, message: string) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
  }
}
