import type { ServerFrame } from './frames.js';

/**
 * The line protocol's text: `[room] <nick> text` for room messages, `[dm] <nick> text` for direct
 * messages, `* ...` for notices and `! CODE: message` for errors. The TCP line session renders
 * the chat core's events through this, and the terminal client renders the WebSocket frames it
 * receives through it, so both print the same lines.
 */
export interface LineView {
  /** This connection's nickname: its own joins, leaves and live messages are not echoed. */
  readonly self?: string | undefined;
  /** `/ids on`: room messages get an `@ID ` prefix. */
  readonly showIds?: boolean;
}

export function errorLine(code: string, message: string): string {
  return `! ${code}: ${message}`;
}

export function welcomeLines(server: string, nick: string): string[] {
  return [
    `* welcome to ${server}, you are ${nick}`,
    '* type /help for commands, /nick NAME to pick a nickname, /login NAME PASSWORD to log in',
  ];
}

export function ackLine(cid: string, id: string): string {
  return `* ack ${cid} ${id}`;
}

export function tokenLine(nick: string, token: string): string {
  return `* token for ${nick}: ${token}`;
}

/** Lines shown for one server frame (none for acks, typing, pongs). */
export function renderFrame(f: ServerFrame, view: LineView = {}): string[] {
  switch (f.type) {
    case 'welcome':
      return [`* connected to ${f.server} as ${f.nick}`];
    case 'nick':
      return [`* you are now ${f.nick}`];
    case 'message':
      if (!f.replay && f.nick === view.self) return []; // the sender saw it typed
      return [`${view.showIds ? `@${f.id} ` : ''}[${f.room}] <${f.nick}> ${f.text}`];
    case 'joined':
      return [
        `* you joined ${f.private ? 'private room ' : ''}#${f.room} (${f.count} here${f.members.length === f.count ? `: ${f.members.join(', ')}` : ''})`,
      ];
    case 'history-end':
      return f.truncated ? [`* (older messages in #${f.room} skipped)`] : [];
    case 'left':
      return [f.by === undefined ? `* you left #${f.room}` : `* ${f.by} removed you from #${f.room}`];
    case 'invited':
      return [`* invited ${f.name} to #${f.room}`];
    case 'kicked':
      return [`* removed ${f.name} from #${f.room}`];
    case 'join':
      return f.nick === view.self ? [] : [`* ${f.nick} joined #${f.room}`];
    case 'leave':
      return f.nick === view.self ? [] : [`* ${f.nick} left #${f.room}`];
    case 'rename':
      return f.to === view.self ? [] : [`* ${f.from} is now known as ${f.to} (#${f.room})`];
    case 'dm':
      return [`[dm] <${f.from}> ${f.text}`];
    case 'who':
      return [`* in #${f.room}: ${f.members.join(', ') || '(nobody)'}`];
    case 'rooms':
      return [`* rooms: ${f.rooms.map((r) => `#${r.room} (${r.members})`).join(', ')}`];
    case 'error':
      return [errorLine(f.code, f.message)];
    case 'bye':
      return [`* ${f.reason}`];
    case 'account':
      return f.account !== null
        ? [`* logged in as ${f.account}`]
        : [`* ${f.reason ?? 'logged out'}: you are ${f.nick} (a guest)`];
    case 'ack':
    case 'typing':
    case 'pong':
      return [];
  }
}
