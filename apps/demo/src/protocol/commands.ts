/**
 * The slash commands of the line protocol, in one table: the TCP line session, the terminal
 * client and the web page parse a typed line with {@link parseLine} and show {@link helpLines},
 * so they accept the same commands and refuse the same input with the same codes.
 */

export type Command =
  | { readonly name: 'nick'; readonly nick: string }
  | { readonly name: 'join'; readonly room: string; readonly after?: string }
  | { readonly name: 'leave'; readonly room?: string }
  | { readonly name: 'rooms' }
  | { readonly name: 'who'; readonly room?: string }
  | { readonly name: 'msg'; readonly to: string; readonly text: string }
  | { readonly name: 'cid'; readonly cid: string; readonly text: string }
  | { readonly name: 'ids'; readonly on: boolean }
  | { readonly name: 'token' }
  | { readonly name: 'create'; readonly room: string; readonly private: boolean }
  | { readonly name: 'invite'; readonly who: string; readonly room?: string }
  | { readonly name: 'kick'; readonly who: string; readonly room?: string }
  | { readonly name: 'register'; readonly account: string; readonly password: string }
  | { readonly name: 'login'; readonly account: string; readonly password: string }
  | { readonly name: 'logout' }
  | { readonly name: 'password'; readonly old: string; readonly new: string }
  | { readonly name: 'help' }
  | { readonly name: 'quit' };

export type CommandName = Command['name'];

/** Codes a line can be refused with before it reaches the chat core (PROTOCOL.md lists them). */
export type ParseErrorCode =
  | 'NICK_INVALID'
  | 'ROOM_INVALID'
  | 'TEXT_INVALID'
  | 'TEXT_EMPTY'
  | 'PASSWORD_INVALID'
  | 'UNKNOWN_COMMAND';

export interface ParseError {
  readonly code: ParseErrorCode;
  readonly message: string;
}

export type ParsedLine =
  | { readonly kind: 'empty' }
  /** Not a command: a message for the current room. */
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'command'; readonly command: Command }
  | ({ readonly kind: 'error' } & ParseError);

interface CommandSpec {
  readonly name: CommandName;
  /** As shown in help: `/join ROOM [ID]`. */
  readonly usage: string;
  /** One or more lines of description. */
  readonly help: readonly string[];
  /** A valid use (tests run it on every client and the server). */
  readonly example: string;
  /** `rest` is what follows the command word, trimmed. */
  readonly parse: (rest: string) => Command | ParseError;
}

const usage = (code: ParseErrorCode, text: string): ParseError => ({ code, message: `usage: ${text}` });

/** Splits `WORD REST` at the first space; undefined when there is no space. */
function head(rest: string): [string, string] | undefined {
  const sp = rest.indexOf(' ');
  return sp === -1 ? undefined : [rest.slice(0, sp), rest.slice(sp + 1)];
}

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'nick',
    example: '/nick ada',
    usage: '/nick NAME',
    help: ['change your nickname'],
    parse: (rest) => (rest ? { name: 'nick', nick: rest } : usage('NICK_INVALID', '/nick NAME')),
  },
  {
    name: 'join',
    example: '/join dev',
    usage: '/join ROOM [ID]',
    help: ['join a room (and make it current); with ID, only messages after it'],
    parse: (rest) => {
      // `/join ROOM AFTER_ID` resumes: exactly the messages after that id, then live ones.
      const [room, after, extra] = rest.split(/\s+/);
      if (!room || extra !== undefined) return usage('ROOM_INVALID', '/join ROOM [AFTER_ID]');
      return after === undefined ? { name: 'join', room } : { name: 'join', room, after };
    },
  },
  {
    name: 'leave',
    example: '/leave',
    usage: '/leave',
    help: ['leave the current room'],
    parse: (rest) => (rest ? { name: 'leave', room: rest } : { name: 'leave' }),
  },
  {
    name: 'rooms',
    example: '/rooms',
    usage: '/rooms',
    help: ['list rooms with member counts'],
    parse: () => ({ name: 'rooms' }),
  },
  {
    name: 'who',
    example: '/who',
    usage: '/who',
    help: ['list members of the current room'],
    parse: (rest) => (rest ? { name: 'who', room: rest } : { name: 'who' }),
  },
  {
    name: 'msg',
    example: '/msg bob hi',
    usage: '/msg NICK TEXT',
    help: ['direct message'],
    parse: (rest) => {
      const parts = head(rest);
      return parts ? { name: 'msg', to: parts[0], text: parts[1] } : usage('TEXT_EMPTY', '/msg NICK TEXT');
    },
  },
  {
    name: 'cid',
    example: '/cid c-1 hello',
    usage: '/cid ID TEXT',
    help: [
      'send with your id for it: answered "* ack ID MSGID"; resend with the same ID',
      'after an error (OUTCOME_UNKNOWN, STORE_FAILED) and it is stored once',
    ],
    parse: (rest) => {
      const parts = head(rest);
      return parts ? { name: 'cid', cid: parts[0], text: parts[1] } : usage('TEXT_EMPTY', '/cid ID TEXT');
    },
  },
  {
    name: 'ids',
    example: '/ids on',
    usage: '/ids on|off',
    help: ['prefix messages with their id (@ID), for /join ROOM ID'],
    parse: (rest) =>
      rest === 'on' || rest === 'off'
        ? { name: 'ids', on: rest === 'on' }
        : usage('TEXT_INVALID', '/ids on|off'),
  },
  {
    name: 'token',
    example: '/token',
    usage: '/token',
    help: ['a token for the HTTP API (bound to your login, or as a guest to this connection)'],
    parse: () => ({ name: 'token' }),
  },
  {
    name: 'create',
    example: '/create secret private',
    usage: '/create ROOM [private]',
    help: ['create a room and join it; private: only accounts you /invite may read, list or post'],
    parse: (rest) => {
      const [room, flag, extra] = rest.split(/\s+/);
      if (!room || extra !== undefined || (flag !== undefined && flag.toLowerCase() !== 'private'))
        return usage('ROOM_INVALID', '/create ROOM [private]');
      return { name: 'create', room, private: flag !== undefined };
    },
  },
  {
    name: 'invite',
    example: '/invite bob',
    usage: '/invite NAME [ROOM]',
    help: ['let an account into your private room (the current one without ROOM)'],
    parse: (rest) => memberCommand('invite', rest),
  },
  {
    name: 'kick',
    example: '/kick bob',
    usage: '/kick NAME [ROOM]',
    help: ['remove an account from your private room; its connections leave it'],
    parse: (rest) => memberCommand('kick', rest),
  },
  {
    name: 'register',
    example: '/register ada correct-horse',
    usage: '/register NAME PASSWORD',
    help: ['create an account and log in (password: 8-256 characters, the rest of the line)'],
    parse: (rest) => {
      const parts = head(rest);
      return parts
        ? { name: 'register', account: parts[0], password: parts[1] }
        : usage('PASSWORD_INVALID', '/register NAME PASSWORD');
    },
  },
  {
    name: 'logout',
    example: '/logout',
    usage: '/logout',
    help: ['end this login session and continue as a guest'],
    parse: () => ({ name: 'logout' }),
  },
  {
    name: 'login',
    example: '/login ada correct-horse',
    usage: '/login NAME PASSWORD',
    help: ['log in to your account'],
    parse: (rest) => {
      const parts = head(rest);
      return parts
        ? { name: 'login', account: parts[0], password: parts[1] }
        : usage('PASSWORD_INVALID', '/login NAME PASSWORD');
    },
  },
  {
    name: 'password',
    example: '/password correct-horse battery-staple',
    usage: '/password OLD NEW',
    help: ['change your password (ends every other session of the account)'],
    parse: (rest) => {
      const parts = head(rest);
      return parts
        ? { name: 'password', old: parts[0], new: parts[1] }
        : usage('PASSWORD_INVALID', '/password OLD NEW');
    },
  },
  { name: 'help', example: '/help', usage: '/help', help: ['this help'], parse: () => ({ name: 'help' }) },
  { name: 'quit', example: '/quit', usage: '/quit', help: ['disconnect'], parse: () => ({ name: 'quit' }) },
];

function memberCommand(name: 'invite' | 'kick', rest: string): Command | ParseError {
  const [who, room, extra] = rest.split(/\s+/);
  if (!who || extra !== undefined) return usage('NICK_INVALID', `/${name} NAME [ROOM]`);
  return room === undefined ? { name, who } : { name, who, room };
}

const BY_NAME = new Map(COMMANDS.map((c) => [`/${c.name}`, c]));

/** One typed line (without its terminator) as a message, a command, or a refusal. */
export function parseLine(line: string): ParsedLine {
  if (line.trim() === '') return { kind: 'empty' };
  if (!line.startsWith('/')) return { kind: 'text', text: line };
  const space = line.indexOf(' ');
  const word = (space === -1 ? line : line.slice(0, space)).toLowerCase();
  const rest = space === -1 ? '' : line.slice(space + 1).trim();
  const spec = BY_NAME.get(word);
  if (!spec) return { kind: 'error', ...unknownCommand(word) };
  const parsed = spec.parse(rest);
  return 'code' in parsed ? { kind: 'error', ...parsed } : { kind: 'command', command: parsed };
}

export function unknownCommand(word: string): ParseError {
  return { code: 'UNKNOWN_COMMAND', message: `${word.slice(0, 32)} (try /help)` };
}

const USAGE_WIDTH = 24;

/** The help text, one entry per line, formatted for a terminal (`* ` prefix like every notice). */
export function helpLines(): string[] {
  const lines = ['* commands:'];
  for (const c of COMMANDS) {
    c.help.forEach((text, i) => {
      // At least one space after a usage longer than the column.
      lines.push(`*   ${(i === 0 ? c.usage : '').padEnd(USAGE_WIDTH - 1)} ${text}`);
    });
  }
  lines.push('* anything else is sent to the current room');
  return lines;
}

/** The same help as `usage — description` pairs, for the web page. */
export function helpEntries(): { usage: string; text: string }[] {
  return COMMANDS.map((c) => ({ usage: c.usage, text: c.help.join(' ') }));
}

/** For switches over commands: a command added to the table and not handled is a type error. */
export function unhandledCommand(cmd: never): never {
  throw new TypeError(`unhandled command ${(cmd as Command).name}`);
}
