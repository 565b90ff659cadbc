import { type ChatCore, type ChatEvent, ChatError, type Session } from '../chat/index.js';
import type { TokenIssuer } from './auth.js';

export interface LinePeer {
  writeLine(line: string): void;
  /** Close after the pending output is flushed. */
  end(): void;
}

export interface LineSessionOptions {
  readonly transport: string;
  readonly serverName: string;
  /** Issues the token for `/token` (HTTP POST as this nickname); without it `/token` is unknown. */
  readonly tokens?: TokenIssuer;
}

/** Lines received but not yet handled before the connection is dropped. */
const MAX_INFLIGHT_LINES = 1024;

export const HELP_LINES = [
  '* commands:',
  '*   /nick NAME       change your nickname',
  '*   /join ROOM [ID]  join a room (and make it current); with ID, only messages after it',
  '*   /leave           leave the current room',
  '*   /rooms           list rooms with member counts',
  '*   /who             list members of the current room',
  '*   /msg NICK TEXT   direct message',
  '*   /cid ID TEXT     send with your id for it: answered "* ack ID MSGID"; resend with the same ID',
  '*                    after an error (OUTCOME_UNKNOWN, STORE_FAILED) and it is stored once',
  '*   /ids on|off      prefix messages with their id (@ID), for /join ROOM ID',
  '*   /token           a token for POST /api/rooms/ROOM/messages (15 min)',
  '*   /help            this help',
  '*   /quit            disconnect',
  '* anything else is sent to the current room',
];

/**
 * The netcat-friendly line protocol as a wire-independent session: one line in, lines out.
 * Output: `[room] <nick> text` for room messages, `[dm] <nick> text` for direct messages,
 * `* ...` for notices and `! CODE: message` for errors.
 */
export class LineSession {
  private session: Session | undefined;
  private current: string | undefined;
  private chain: Promise<void>;
  private readonly core: ChatCore;
  private readonly peer: LinePeer;
  private readonly options: LineSessionOptions;

  constructor(core: ChatCore, peer: LinePeer, options: LineSessionOptions) {
    this.core = core;
    this.peer = peer;
    this.options = options;
    this.chain = new Promise<void>((resolve) => {
      this.releaseStart = resolve;
    });
  }

  /**
   * Open the chat session and join the default room. Lines that arrive meanwhile wait behind
   * start-up (they are queued on the same chain, bounded by the in-flight limit), and a connection
   * that ended meanwhile gets its session closed as soon as it exists: no ghost nickname.
   */
  async start(): Promise<void> {
    let session: Session;
    try {
      session = await this.core.connect(this.options.transport, this.onEvent);
    } catch (err) {
      this.ended = true; // queued lines are dropped: there is no session to run them
      this.releaseStart();
      throw err;
    }
    this.session = session;
    if (this.ended) {
      this.releaseStart();
      await session.close();
      return;
    }
    this.peer.writeLine(`* welcome to ${this.options.serverName}, you are ${session.nick}`);
    this.peer.writeLine('* type /help for commands, /nick NAME to pick a nickname');
    try {
      this.current = await session.join(this.core.defaultRoom);
    } catch (err) {
      this.report(err);
    } finally {
      this.releaseStart();
    }
  }

  /** Input waits behind this until start() has finished (or failed). */
  private releaseStart: () => void = () => {};
  private ended = false;

  private readonly onEvent = (e: ChatEvent): void => {
    const w = (line: string) => this.peer.writeLine(line);
    switch (e.type) {
      case 'message':
        if (!e.replay && e.message.nick === this.session?.nick) return; // the sender saw it typed
        this.core.metrics?.messageOut(this.options.transport);
        w(
          `${this.showIds ? `@${e.message.id} ` : ''}[${e.message.room}] <${e.message.nick}> ${e.message.text}`,
        );
        return;
      case 'joined':
        w(
          `* you joined #${e.room} (${e.count} here${e.members.length === e.count ? `: ${e.members.join(', ')}` : ''})`,
        );
        return;
      case 'history-end':
        if (e.truncated) w(`* (older messages in #${e.room} skipped)`);
        return;
      case 'left':
        w(`* you left #${e.room}`);
        return;
      case 'join':
        if (e.nick !== this.session?.nick) w(`* ${e.nick} joined #${e.room}`);
        return;
      case 'leave':
        if (e.nick !== this.session?.nick) w(`* ${e.nick} left #${e.room}`);
        return;
      case 'rename':
        if (e.to !== this.session?.nick) w(`* ${e.from} is now known as ${e.to} (#${e.room})`);
        return;
      case 'dm':
        this.core.metrics?.messageOut(this.options.transport);
        w(`[dm] <${e.from}> ${e.text}`);
        return;
      case 'nick':
        w(`* you are now ${e.nick}`);
        return;
      case 'typing':
        return;
    }
  };

  /** A complete line from the client (without the terminator). */
  onLine(line: string): void {
    // Lines are handled one at a time; a client that pipelines faster is cut off, not buffered.
    if (this.inflight >= MAX_INFLIGHT_LINES) {
      if (!this.overrun) {
        this.overrun = true;
        this.core.metrics?.rejectedInput(this.options.transport, 'too_many_pending');
        this.peer.writeLine('! FLOOD: too many lines in flight, disconnecting');
        this.peer.end();
      }
      return;
    }
    this.inflight++;
    void this.enqueue(() => this.handle(line.endsWith('\r') ? line.slice(0, -1) : line)).finally(() => {
      this.inflight--;
    });
  }

  private inflight = 0;
  private overrun = false;
  /** `/ids on`: prefix room messages with `@<id> ` so a client can resume with `/join ROOM ID`. */
  private showIds = false;

  /** A line the framing layer refused (too long, invalid UTF-8). */
  onBadLine(code: string, message: string): void {
    this.core.metrics?.rejectedInput(this.options.transport, code.toLowerCase());
    // Queued behind earlier lines so replies stay in input order.
    void this.enqueue(async () => this.peer.writeLine(`! ${code}: ${message}`));
  }

  /** Resolves once start-up and every line received so far have been handled. */
  drain(): Promise<void> {
    return this.chain;
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(task).catch((err: unknown) => this.report(err));
    return this.chain;
  }

  /** An error as a `! CODE: message` line; store failures never show their raw text. */
  private report(err: unknown): void {
    const e = this.core.clientError(err);
    if (e.code !== 'RATE_LIMITED')
      this.core.metrics?.rejectedInput(this.options.transport, e.code.toLowerCase());
    this.peer.writeLine(`! ${e.code}: ${e.message}`);
  }

  private async handle(line: string): Promise<void> {
    const session = this.session;
    // Start-up failed or the connection is gone: nothing to run the line in.
    if (!session || this.ended) return;
    if (line.trim() === '') return;
    if (!line.startsWith('/')) {
      if (!this.current) throw new ChatError('NOT_IN_ROOM', 'join a room first: /join lobby');
      await session.say(this.current, line);
      return;
    }
    const space = line.indexOf(' ');
    const cmd = (space === -1 ? line : line.slice(0, space)).toLowerCase();
    const rest = space === -1 ? '' : line.slice(space + 1).trim();
    switch (cmd) {
      case '/nick':
        if (!rest) throw new ChatError('NICK_INVALID', 'usage: /nick NAME');
        await session.setNick(rest);
        return;
      case '/join': {
        // `/join ROOM AFTER_ID` resumes: exactly the messages after that id, then live ones.
        const [room, after, extra] = rest.split(/\s+/);
        if (!room || extra !== undefined) throw new ChatError('ROOM_INVALID', 'usage: /join ROOM [AFTER_ID]');
        this.current = await session.join(room, after);
        return;
      }
      case '/ids':
        if (rest !== 'on' && rest !== 'off') throw new ChatError('TEXT_INVALID', 'usage: /ids on|off');
        this.showIds = rest === 'on';
        this.peer.writeLine(`* ids ${rest}`);
        return;
      case '/leave': {
        const room = rest || this.current;
        if (!room) throw new ChatError('NOT_IN_ROOM', 'you are not in a room');
        await session.leave(room);
        if (this.current === room.replace(/^#/, '').toLowerCase()) this.current = session.rooms.at(-1);
        if (this.current) this.peer.writeLine(`* current room: #${this.current}`);
        return;
      }
      case '/rooms': {
        const rooms = await this.core.rooms();
        this.peer.writeLine(`* rooms: ${rooms.map((r) => `#${r.room} (${r.members})`).join(', ')}`);
        return;
      }
      case '/who': {
        const room = rest || this.current;
        if (!room) throw new ChatError('NOT_IN_ROOM', 'you are not in a room');
        const members = await session.who(room);
        this.peer.writeLine(
          `* in #${room.replace(/^#/, '').toLowerCase()}: ${members.join(', ') || '(nobody)'}`,
        );
        return;
      }
      case '/msg': {
        const sp = rest.indexOf(' ');
        if (sp === -1) throw new ChatError('TEXT_EMPTY', 'usage: /msg NICK TEXT');
        const to = rest.slice(0, sp);
        await session.dm(to, rest.slice(sp + 1));
        this.peer.writeLine(`* sent to ${to}`);
        return;
      }
      case '/cid': {
        // The line protocol's client message id: an explicit ack, and retries that dedupe.
        const sp = rest.indexOf(' ');
        if (sp === -1) throw new ChatError('TEXT_EMPTY', 'usage: /cid ID TEXT');
        const cid = rest.slice(0, sp);
        if (!this.current) throw new ChatError('NOT_IN_ROOM', 'join a room first: /join lobby');
        try {
          const m = await session.say(this.current, rest.slice(sp + 1), cid);
          this.peer.writeLine(`* ack ${cid} ${m.id}`);
        } catch (err) {
          const e = this.core.clientError(err, 'append');
          throw e.code === 'CID_INVALID' ? e : new ChatError(e.code, `${e.message} (cid ${cid})`);
        }
        return;
      }
      case '/help':
        for (const l of HELP_LINES) this.peer.writeLine(l);
        return;
      case '/token':
        if (this.options.tokens) {
          session.takeControl();
          this.peer.writeLine(
            `* token for ${session.nick}: ${this.options.tokens.issue(session.nick, session.id)}`,
          );
          return;
        }
        break;
      case '/quit':
        this.peer.writeLine('* bye');
        this.peer.end();
        return;
    }
    this.core.metrics?.rejectedInput(this.options.transport, 'unknown_command');
    this.peer.writeLine(`! UNKNOWN_COMMAND: ${cmd.slice(0, 32)} (try /help)`);
  }

  /** Connection gone: close the session now, or as soon as start() has it. */
  async end(): Promise<void> {
    this.ended = true;
    await this.session?.close();
  }

  bye(reason: string): void {
    this.peer.writeLine(`* ${reason}`);
  }
}
