/**
 * What a person reads for each error code (the web page shows these; the code itself stays in
 * the tooltip). Codes without an entry show the server's message.
 */
export const ERROR_SENTENCES: Readonly<Record<string, string>> = {
  NICK_TAKEN: 'That nickname is already taken: pick another one.',
  NICK_INVALID: 'Nicknames are 1–24 letters, digits, _ or -.',
  ROOM_INVALID: 'Room names are 1–32 letters, digits, _ or -.',
  NOT_IN_ROOM: 'You are not in that room: /join it first.',
  TOO_MANY_ROOMS: 'You are in as many rooms as one connection may join: /leave one first.',
  ROOM_LIMIT: 'The server has as many rooms as it allows: join an existing room.',
  TEXT_EMPTY: 'Nothing to send.',
  TEXT_TOO_LONG: 'That message is too long.',
  TEXT_INVALID: 'That message contains characters that are not allowed (invisible or line-breaking ones).',
  RATE_LIMITED: 'Slow down a little, then try again.',
  NO_SUCH_NICK: 'Nobody has that nickname right now.',
  STORE_FAILED: 'The server could not store the message; it will be resent.',
  OUTCOME_UNKNOWN: 'The server did not confirm the message in time; it will be resent.',
  SHUTTING_DOWN: 'The server is restarting.',
  UNKNOWN_COMMAND: 'Unknown command: type /help for the list.',
  NOT_INVITED: 'That room is private: its owner has to invite you first.',
  NOT_OWNER: 'Only the owner of this private room can do that.',
  NOT_PRIVATE: 'That room is public: everyone may join it, no invitation needed.',
  NOT_A_MEMBER: 'That account is not a member of this room.',
  ROOM_EXISTS: 'That room exists already: a private room needs a new name.',
  NO_SUCH_ACCOUNT: 'There is no account with that name.',
  NAME_REGISTERED: 'That name belongs to an account: log in to use it.',
  ACCOUNT_EXISTS: 'That name is registered already: pick another one, or log in.',
  PASSWORD_INVALID: 'Passwords are 8–256 characters.',
  LOGIN_FAILED: 'Wrong name or password.',
  NOT_LOGGED_IN: 'You are not logged in.',
  ALREADY_LOGGED_IN: 'You are logged in already: log out first.',
  LOGIN_REQUIRED: 'This server needs an account: register or log in first.',
  SESSION_ENDED:
    'Your login session has ended (logged out elsewhere, password changed or expired): log in again.',
  BUSY: 'The server is busy: try again in a moment.',
};

export function humanError(code: string, message: string): string {
  return Object.hasOwn(ERROR_SENTENCES, code) ? ERROR_SENTENCES[code]! : message;
}
