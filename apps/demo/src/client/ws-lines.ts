import { Outbox, type OutboxOptions } from './web/outbox.js';
import type { ClientFrame, ServerFrame } from './web/protocol.js';

/** A resend the caller schedules: after `delayMs`, send `outbox.resend(cid)` if still pending. */
export interface Retry {
  readonly cid: string;
  readonly delayMs: number;
}

/**
 * Translates between the terminal's slash-command lines and the WebSocket JSON protocol, keeping
 * the state a resume needs (nickname, rooms, last id per room). Pure: no sockets.
 */
export class WsLineTranslator {
  nick: string | undefined;
  current: string | undefined;
  readonly lastIds = new Map<string, string>();
  /** Every room the server confirmed we joined and we have not left: all of them are rejoined. */
  readonly joined = new Set<string>();
  /** Messages typed but not acknowledged yet: resent after a reconnect or a STORE_FAILED. */
  readonly outbox: Outbox;
  private readonly seen = new Set<string>();

  constructor(wantedNick?: string, outbox: OutboxOptions = {}) {
    this.nick = wantedNick;
    this.outbox = new Outbox(outbox);
  }

  /** Frames to send right after `welcome`: reclaim the nickname and rejoin rooms from the last ids. */
  resumeFrames(welcomeNick: string): ClientFrame[] {
    const frames: ClientFrame[] = [];
    if (this.nick && this.nick !== welcomeNick) frames.push({ type: 'nick', nick: this.nick });
    else this.nick = welcomeNick;
    // Every room we were in, not only those where a message was seen; the current room last, so
    // it is current again once the joins are answered.
    const rooms = [...this.joined].filter((r) => r !== this.current);
    if (this.current !== undefined) rooms.push(this.current);
    if (rooms.length === 0) rooms.push('lobby');
    for (const room of rooms) {
      const after = this.lastIds.get(room);
      frames.push(after ? { type: 'join', room, after } : { type: 'join', room });
    }
    // After the joins (the server handles frames in order): whatever was never acknowledged.
    frames.push(...this.outbox.resendAll());
    return frames;
  }

  /** A typed line → frames to send, or a local line to print (help, usage). */
  input(line: string): { frames: ClientFrame[]; print?: string[]; quit?: boolean } {
    if (line.trim() === '') return { frames: [] };
    if (!line.startsWith('/')) {
      if (!this.current) return { frames: [], print: ['! NOT_IN_ROOM: join a room first: /join lobby'] };
      const frame = this.outbox.add(this.current, line);
      if (!frame) {
        return {
          frames: [],
          print: [
            `! ${this.outbox.size} messages are still waiting for the server; not sent, try again later`,
          ],
        };
      }
      return { frames: [frame] };
    }
    const space = line.indexOf(' ');
    const cmd = (space === -1 ? line : line.slice(0, space)).toLowerCase();
    const rest = space === -1 ? '' : line.slice(space + 1).trim();
    switch (cmd) {
      case '/nick':
        return rest
          ? { frames: [{ type: 'nick', nick: rest }] }
          : { frames: [], print: ['! usage: /nick NAME'] };
      case '/join': {
        if (!rest) return { frames: [], print: ['! usage: /join ROOM'] };
        const room = rest.replace(/^#/, '').toLowerCase();
        const after = this.lastIds.get(room);
        return { frames: [after ? { type: 'join', room, after } : { type: 'join', room }] };
      }
      case '/leave': {
        const room = (rest || this.current || '').replace(/^#/, '').toLowerCase();
        return room
          ? { frames: [{ type: 'leave', room }] }
          : { frames: [], print: ['! you are not in a room'] };
      }
      case '/rooms':
        return { frames: [{ type: 'rooms' }] };
      case '/who':
        return { frames: [{ type: 'who', room: (rest || this.current || 'lobby').replace(/^#/, '') }] };
      case '/msg': {
        const sp = rest.indexOf(' ');
        if (sp === -1) return { frames: [], print: ['! usage: /msg NICK TEXT'] };
        return {
          frames: [{ type: 'dm', to: rest.slice(0, sp), text: rest.slice(sp + 1) }],
          print: [`* sent to ${rest.slice(0, sp)}`],
        };
      }
      case '/help':
        return {
          frames: [],
          print: ['* commands: /nick NAME, /join ROOM, /leave, /rooms, /who, /msg NICK TEXT, /help, /quit'],
        };
      case '/quit':
        return { frames: [], quit: true };
      default:
        return { frames: [], print: [`! UNKNOWN_COMMAND: ${cmd.slice(0, 32)} (try /help)`] };
    }
  }

  /** A server frame → lines to print (same shapes as the TCP line protocol). */
  output(f: ServerFrame): { lines: string[]; send?: ClientFrame[]; retry?: Retry } {
    switch (f.type) {
      case 'welcome':
        return { lines: [`* connected to ${f.server} as ${f.nick}`], send: this.resumeFrames(f.nick) };
      case 'nick':
        this.nick = f.nick;
        return { lines: [`* you are now ${f.nick}`] };
      case 'joined':
        this.current = f.room;
        this.joined.add(f.room);
        return {
          lines: [
            `* you joined #${f.room} (${f.count} here${f.members.length === f.count ? `: ${f.members.join(', ')}` : ''})`,
          ],
        };
      case 'history-end':
        return { lines: f.truncated ? [`* (older messages in #${f.room} skipped)`] : [] };
      case 'left':
        this.lastIds.delete(f.room);
        this.joined.delete(f.room);
        if (this.current === f.room) this.current = [...this.joined].at(-1);
        return { lines: [`* you left #${f.room}`] };
      case 'message': {
        if (this.seen.has(f.id)) return { lines: [] };
        this.seen.add(f.id);
        if (this.seen.size > 10_000) this.seen.clear();
        this.lastIds.set(f.room, f.id);
        if (f.nick === this.nick && !f.replay) return { lines: [] };
        return { lines: [`[${f.room}] <${f.nick}> ${f.text}`] };
      }
      case 'join':
      case 'leave':
        return {
          lines:
            f.nick === this.nick ? [] : [`* ${f.nick} ${f.type === 'join' ? 'joined' : 'left'} #${f.room}`],
        };
      case 'rename':
        return { lines: [`* ${f.from} is now known as ${f.to} (#${f.room})`] };
      case 'dm':
        return { lines: [`[dm] <${f.from}> ${f.text}`] };
      case 'who':
        return { lines: [`* in #${f.room}: ${f.members.join(', ') || '(nobody)'}`] };
      case 'rooms':
        return { lines: [`* rooms: ${f.rooms.map((r) => `#${r.room} (${r.members})`).join(', ')}`] };
      case 'ack':
        this.outbox.acked(f.cid);
        return { lines: [] };
      case 'error': {
        const d = this.outbox.failed(f.cid, f.code);
        switch (d.action) {
          case 'retry':
            return {
              lines: [`! ${f.code}: ${f.message} (resending in ${(d.delayMs / 1000).toFixed(1)}s)`],
              retry: { cid: d.message.cid, delayMs: d.delayMs },
            };
          case 'wait':
            return { lines: [`! ${f.code}: ${f.message} (will resend after reconnecting)`] };
          case 'drop':
            return {
              lines: [
                `! ${f.code}: ${f.message}${d.gaveUp ? ' (gave up)' : ''}: not sent: ${d.message.text.slice(0, 80)}`,
              ],
            };
          default:
            return { lines: [`! ${f.code}: ${f.message}`] };
        }
      }
      case 'bye':
        return { lines: [`* ${f.reason}`] };
      default:
        return { lines: [] };
    }
  }
}
