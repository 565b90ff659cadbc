import { type ChatCore, type ChatEvent, ChatError, type Session } from '../chat/index.js';
import {
  ackLine,
  type Command,
  errorLine,
  eventFrame,
  helpLines,
  normalizeRoom,
  parseLine,
  renderFrame,
  unhandledCommand,
  tokenLine,
  unknownCommand,
  welcomeLines,
} from '../protocol/index.js';
import { type TokenIssuer, tokenFor } from './auth.js';

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
  /** The client's address: login attempts are rate limited per address. */
  readonly address?: string;
}

/** Lines received but not yet handled before the connection is dropped. */
const MAX_INFLIGHT_LINES = 1024;

/** The `/help` answer (the shared command table's help). */
export const HELP_LINES = helpLines();

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
    for (const line of welcomeLines(this.options.serverName, session.nick)) this.peer.writeLine(line);
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
    const frame = eventFrame(e);
    if (frame === undefined) {
      if (e.type === 'nick') this.peer.writeLine(`* you are now ${e.nick}`);
      return;
    }
    const lines = renderFrame(frame, { self: this.session?.nick, showIds: this.showIds });
    if (lines.length > 0 && (frame.type === 'message' || frame.type === 'dm'))
      this.core.metrics?.messageOut(this.options.transport);
    for (const line of lines) this.peer.writeLine(line);
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
    void this.enqueue(async () => this.peer.writeLine(errorLine(code, message)));
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
    this.peer.writeLine(errorLine(e.code, e.message));
  }

  private async handle(line: string): Promise<void> {
    const session = this.session;
    // Start-up failed or the connection is gone: nothing to run the line in.
    if (!session || this.ended) return;
    const parsed = parseLine(line);
    switch (parsed.kind) {
      case 'empty':
        return;
      case 'text':
        await session.checkLive(); // LOGIN_REQUIRED before NOT_IN_ROOM under --guests off
        if (!this.current)
          throw new ChatError('NOT_IN_ROOM', `join a room first: /join ${this.core.defaultRoom}`);
        await session.say(this.current, parsed.text);
        return;
      case 'error':
        this.core.metrics?.rejectedInput(this.options.transport, parsed.code.toLowerCase());
        this.peer.writeLine(errorLine(parsed.code, parsed.message));
        return;
      case 'command':
        await this.run(session, parsed.command);
    }
  }

  private async run(session: Session, cmd: Command): Promise<void> {
    const w = (line: string) => this.peer.writeLine(line);
    switch (cmd.name) {
      case 'nick':
        await session.setNick(cmd.nick);
        return;
      case 'join':
        this.current = await session.join(cmd.room, cmd.after);
        return;
      case 'ids':
        this.showIds = cmd.on;
        w(`* ids ${cmd.on ? 'on' : 'off'}`);
        return;
      case 'leave': {
        const room = cmd.room ?? this.current;
        if (!room) throw new ChatError('NOT_IN_ROOM', 'you are not in a room');
        await session.leave(room);
        if (this.current === room.replace(/^#/, '').toLowerCase()) this.current = session.rooms.at(-1);
        if (this.current) w(`* current room: #${this.current}`);
        return;
      }
      case 'rooms':
        for (const l of renderFrame({
          type: 'rooms',
          rooms: await this.core.rooms(this.core.principal(session)),
        }))
          w(l);
        return;
      case 'who': {
        const room = cmd.room ?? this.current;
        if (!room) throw new ChatError('NOT_IN_ROOM', 'you are not in a room');
        const members = await session.who(room);
        for (const l of renderFrame({ type: 'who', room: room.replace(/^#/, '').toLowerCase(), members }))
          w(l);
        return;
      }
      case 'msg':
        await session.dm(cmd.to, cmd.text);
        w(`* sent to ${cmd.to}`);
        return;
      case 'cid': {
        // The line protocol's client message id: an explicit ack, and retries that dedupe.
        if (!this.current)
          throw new ChatError('NOT_IN_ROOM', `join a room first: /join ${this.core.defaultRoom}`);
        try {
          const m = await session.say(this.current, cmd.text, cmd.cid);
          w(ackLine(cmd.cid, m.id));
        } catch (err) {
          const e = this.core.clientError(err, 'append');
          throw e.code === 'CID_INVALID' ? e : new ChatError(e.code, `${e.message} (cid ${cmd.cid})`);
        }
        return;
      }
      case 'help':
        for (const l of HELP_LINES) w(l);
        return;
      case 'token':
        if (!this.options.tokens) {
          // Without an issuer `/token` is not offered: answered like any unknown command.
          const e = unknownCommand('/token');
          this.core.metrics?.rejectedInput(this.options.transport, 'unknown_command');
          w(errorLine(e.code, e.message));
          return;
        }
        {
          await session.checkLive();
          session.takeControl();
          const token = tokenFor(this.core, this.options.tokens, session);
          if (token === undefined)
            throw new ChatError('LOGIN_REQUIRED', 'log in first: /login NAME PASSWORD');
          w(tokenLine(session.nick, token));
          return;
        }
      case 'register':
        await session.register(cmd.account, cmd.password, this.options.address);
        await this.joinDefault(session);
        return;
      case 'login':
        await session.login(cmd.account, cmd.password, this.options.address);
        await this.joinDefault(session);
        return;
      case 'logout':
        await session.logout();
        if (!this.current || !session.inRoom(this.current)) this.current = session.rooms.at(-1);
        return;
      case 'password':
        await session.changePassword(cmd.old, cmd.new, this.options.address);
        w('* password changed: every other session of your account has ended');
        return;
      case 'create':
        this.current = await session.create(cmd.room, cmd.private);
        return;
      case 'invite': {
        const room = this.roomOf(cmd.room);
        const name = await session.invite(room, cmd.who);
        for (const l of renderFrame({ type: 'invited', room: normalizeRoom(room), name })) w(l);
        return;
      }
      case 'kick': {
        const room = this.roomOf(cmd.room);
        const name = await session.kick(room, cmd.who);
        for (const l of renderFrame({ type: 'kicked', room: normalizeRoom(room), name })) w(l);
        return;
      }
      case 'quit':
        w('* bye');
        this.peer.end();
        return;
      default:
        unhandledCommand(cmd);
    }
  }

  /** The room a command names, else the current one. */
  private roomOf(room: string | undefined): string {
    const r = room ?? this.current;
    if (!r) throw new ChatError('NOT_IN_ROOM', 'you are not in a room');
    return r;
  }

  /** After a login: into the default room when in none (e.g. `--guests off`, where guests join nothing). */
  private async joinDefault(session: Session): Promise<void> {
    if (this.current && session.inRoom(this.current)) return;
    this.current = await session.join(this.core.defaultRoom);
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
