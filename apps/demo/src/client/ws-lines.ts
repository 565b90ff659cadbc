import { Outbox, type OutboxOptions } from './web/outbox.js';
import {
  ackLine,
  type ClientFrame,
  type Command,
  DEFAULT_ROOM,
  errorLine,
  helpLines,
  normalizeRoom,
  parseLine,
  renderFrame,
  type ServerFrame,
  tokenLine,
} from '../protocol/index.js';

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
  /** `/ids on`: room messages get their id as a prefix, like on the line protocol. */
  private showIds = false;
  /** The token of the last welcome or nick frame, shown by `/token`. */
  private token: string | undefined;
  /** The login token while logged in: a reconnect continues the same login session with it. */
  private loginToken: string | undefined;
  /** Cids typed with `/cid`: their acks are printed (the outbox's own are not). */
  private readonly typedCids = new Set<string>();

  constructor(wantedNick?: string, outbox: OutboxOptions = {}) {
    this.nick = wantedNick;
    this.outbox = new Outbox(outbox);
  }

  /** Frames to send right after `welcome`: reclaim the nickname and rejoin rooms from the last ids. */
  resumeFrames(welcomeNick: string): ClientFrame[] {
    const frames: ClientFrame[] = [];
    if (this.loginToken) frames.push({ type: 'login', token: this.loginToken });
    else if (this.nick && this.nick !== welcomeNick) frames.push({ type: 'nick', nick: this.nick });
    else this.nick = welcomeNick;
    // Every room we were in, not only those where a message was seen; the current room last, so
    // it is current again once the joins are answered.
    const rooms = [...this.joined].filter((r) => r !== this.current);
    if (this.current !== undefined) rooms.push(this.current);
    if (rooms.length === 0) rooms.push(DEFAULT_ROOM);
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
    const parsed = parseLine(line);
    switch (parsed.kind) {
      case 'empty':
        return { frames: [] };
      case 'error':
        return { frames: [], print: [errorLine(parsed.code, parsed.message)] };
      case 'text': {
        if (!this.current) return { frames: [], print: [notInRoom()] };
        const frame = this.outbox.add(this.current, parsed.text);
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
      case 'command':
        return this.command(parsed.command);
    }
  }

  private command(cmd: Command): { frames: ClientFrame[]; print?: string[]; quit?: boolean } {
    switch (cmd.name) {
      case 'nick':
        return { frames: [{ type: 'nick', nick: cmd.nick }] };
      case 'join': {
        const room = normalizeRoom(cmd.room);
        const after = cmd.after ?? this.lastIds.get(room);
        return { frames: [after ? { type: 'join', room, after } : { type: 'join', room }] };
      }
      case 'leave': {
        const room = normalizeRoom(cmd.room ?? this.current ?? '');
        return room
          ? { frames: [{ type: 'leave', room }] }
          : { frames: [], print: [errorLine('NOT_IN_ROOM', 'you are not in a room')] };
      }
      case 'rooms':
        return { frames: [{ type: 'rooms' }] };
      case 'who':
        return { frames: [{ type: 'who', room: normalizeRoom(cmd.room ?? this.current ?? DEFAULT_ROOM) }] };
      case 'msg':
        return { frames: [{ type: 'dm', to: cmd.to, text: cmd.text }], print: [`* sent to ${cmd.to}`] };
      case 'cid':
        if (!this.current) return { frames: [], print: [notInRoom()] };
        this.typedCids.add(cmd.cid);
        return { frames: [{ type: 'send', room: this.current, text: cmd.text, cid: cmd.cid }] };
      case 'ids':
        this.showIds = cmd.on;
        return { frames: [], print: [`* ids ${cmd.on ? 'on' : 'off'}`] };
      case 'token':
        return {
          frames: [],
          print: [
            this.token && this.nick
              ? tokenLine(this.nick, this.token)
              : errorLine('NOT_CONNECTED', 'no token yet: wait for the connection'),
          ],
        };
      case 'create':
        return {
          frames: [
            cmd.private
              ? { type: 'create', room: normalizeRoom(cmd.room), private: true }
              : { type: 'create', room: normalizeRoom(cmd.room) },
          ],
        };
      case 'invite':
      case 'kick': {
        const room = normalizeRoom(cmd.room ?? this.current ?? '');
        if (!room) return { frames: [], print: [errorLine('NOT_IN_ROOM', 'you are not in a room')] };
        return { frames: [{ type: cmd.name, room, name: cmd.who }] };
      }
      case 'register':
        return { frames: [{ type: 'register', name: cmd.account, password: cmd.password }] };
      case 'login':
        return { frames: [{ type: 'login', name: cmd.account, password: cmd.password }] };
      case 'logout':
        return { frames: [{ type: 'logout' }] };
      case 'password':
        return { frames: [{ type: 'password', old: cmd.old, new: cmd.new }] };
      case 'help':
        return { frames: [], print: helpLines() };
      case 'quit':
        return { frames: [], quit: true };
    }
  }

  /** A server frame → lines to print (same shapes as the TCP line protocol). */
  output(f: ServerFrame): { lines: string[]; send?: ClientFrame[]; retry?: Retry } {
    const view = { self: this.nick, showIds: this.showIds };
    switch (f.type) {
      case 'welcome':
        this.token = f.token;
        return { lines: renderFrame(f), send: this.resumeFrames(f.nick) };
      case 'nick':
        this.nick = f.nick;
        this.token = f.token;
        return { lines: renderFrame(f) };
      case 'account':
        this.nick = f.nick;
        this.loginToken = f.account !== null ? f.token : undefined;
        if (f.token !== undefined || f.account === null) this.token = f.token;
        return { lines: renderFrame(f) };
      case 'joined':
        this.current = f.room;
        this.joined.add(f.room);
        return { lines: renderFrame(f) };
      case 'left':
        this.lastIds.delete(f.room);
        this.joined.delete(f.room);
        if (this.current === f.room) this.current = [...this.joined].at(-1);
        return { lines: renderFrame(f) };
      case 'message': {
        if (this.seen.has(f.id)) return { lines: [] };
        this.seen.add(f.id);
        if (this.seen.size > 10_000) this.seen.clear();
        this.lastIds.set(f.room, f.id);
        return { lines: renderFrame(f, view) };
      }
      case 'ack':
        this.outbox.acked(f.cid);
        if (f.cid !== undefined && f.id !== undefined && this.typedCids.delete(f.cid))
          return { lines: [ackLine(f.cid, f.id)] };
        return { lines: [] };
      case 'error': {
        if (f.cid !== undefined && this.typedCids.delete(f.cid))
          return { lines: [errorLine(f.code, `${f.message} (cid ${f.cid})`)] };
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
            return { lines: renderFrame(f) };
        }
      }
      default:
        return { lines: renderFrame(f, view) };
    }
  }
}

function notInRoom(): string {
  return errorLine('NOT_IN_ROOM', `join a room first: /join ${DEFAULT_ROOM}`);
}
