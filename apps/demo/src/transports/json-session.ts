import { type ChatCore, type ChatEvent, ChatError, type Session } from '../chat/index.js';
import { eventFrame, wireMessage } from '../protocol/event-frame.js';
import { PROTOCOL_VERSION, type ServerFrame } from '../protocol/frames.js';
import type { StoredMessage } from '../store/types.js';
import { type TokenIssuer, tokenFor } from './auth.js';

export interface JsonSessionOptions {
  readonly transport: string;
  readonly serverName: string;
  readonly tokens: TokenIssuer;
  /** The client's address: login attempts are rate limited per address. */
  readonly address?: string;
  readonly maxFrameBytes: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Invalid frames tolerated before the connection is closed with 1008. @default 50 */
  readonly maxInvalidFrames?: number;
}

/** A live message serialised once for all recipients; a transport may cache a prepared frame on it. */
export interface SharedFrame {
  readonly text: string;
  prepared?: unknown;
}

export interface JsonPeer {
  /** Send one text frame. */
  send(text: string): void;
  /** Send a frame shared by many recipients (fan-out); falls back to send(text) when absent. */
  sendShared?(frame: SharedFrame): void;
  close(code: number, reason: string): void;
}

const MAX_REF = 64;
/** Frames received but not yet handled before the connection is closed with 1008. */
const MAX_INFLIGHT = 1024;
/**
 * Size of the frames received but not yet handled (also those waiting for `welcome` while the
 * session starts) before the connection is closed with 1008, in UTF-16 code units (`length`, free
 * to read, at least one per byte of ASCII JSON): without it 1,024 frames of 16 KiB would hold
 * 16 MiB per connection.
 */
export const MAX_INFLIGHT_BYTES = 1024 * 1024;
const serialised = new WeakMap<StoredMessage, SharedFrame>();

/**
 * The WebSocket JSON protocol (PROTOCOL.md) as a wire-independent session: text frames in,
 * text frames out. The WebSocket adapter only moves frames; everything the protocol means is here.
 */
export class JsonSession {
  private session: Session | undefined;
  private invalid = 0;
  private readonly pending: string[] = [];
  private readonly core: ChatCore;
  private readonly peer: JsonPeer;
  private readonly options: JsonSessionOptions;
  /** Frames handled one after another so replies keep the order of requests. */
  private chain: Promise<void> = Promise.resolve();

  constructor(core: ChatCore, peer: JsonPeer, options: JsonSessionOptions) {
    this.core = core;
    this.peer = peer;
    this.options = options;
  }

  get nick(): string | undefined {
    return this.session?.nick;
  }

  /**
   * Open the chat session and send `welcome`. Frames that arrive meanwhile wait (counted toward
   * the in-flight limits) and run in order afterwards; a connection that ended meanwhile gets its
   * session closed as soon as it exists: no ghost nickname.
   */
  async start(): Promise<void> {
    let session: Session;
    try {
      session = await this.core.connect(this.options.transport, this.onEvent);
    } catch (err) {
      this.pending.length = 0;
      throw this.core.clientError(err, 'connect');
    }
    this.session = session;
    if (this.ended) {
      this.pending.length = 0;
      await session.close();
      return;
    }
    this.out({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      nick: this.session.nick,
      // Empty under `--guests off`: a connection gets a token once it logs in.
      token: tokenFor(this.core, this.options.tokens, this.session) ?? '',
      server: this.options.serverName,
      limits: {
        maxMessageLength: this.core.maxMessageLength,
        maxFrameBytes: this.options.maxFrameBytes,
        ratePerSecond: this.options.ratePerSecond,
        burst: this.options.burst,
      },
    });
    for (const text of this.pending.splice(0)) this.run(text);
  }

  private ended = false;

  private readonly onEvent = (e: ChatEvent): void => {
    switch (e.type) {
      case 'message': {
        const m = e.message;
        this.core.metrics?.messageOut(this.options.transport);
        if (e.replay) {
          this.peer.send(JSON.stringify(wireMessage(m, true)));
          return;
        }
        // One live message goes to every member: serialise it once, not once per recipient.
        let shared = serialised.get(m);
        if (shared === undefined) {
          shared = { text: JSON.stringify(wireMessage(m)) };
          serialised.set(m, shared);
        }
        if (this.peer.sendShared) this.peer.sendShared(shared);
        else this.peer.send(shared.text);
        return;
      }
      case 'nick':
        // Sent as the reply to the `nick` request instead (it carries the ref).
        return;
      case 'identity': {
        // Carries the ref when it answers register/login/logout/password.
        const frame = eventFrame(e);
        if (frame) this.out({ ...frame, ...this.accountRef });
        return;
      }
      case 'joined':
        // Sent by the join handler so it can carry the ref.
        this.out({
          type: 'joined',
          room: e.room,
          members: e.members,
          count: e.count,
          ...(e.private ? { private: true } : {}),
          ...this.joinRef,
        });
        return;
      default: {
        const frame = eventFrame(e);
        if (frame !== undefined) this.out(frame);
      }
    }
  };

  private joinRef: { ref?: string } = {};
  private accountRef: { ref?: string } = {};

  /** Runs an identity change whose `account` frame answers the request (with its ref). */
  private async identity(refPart: { ref?: string }, change: () => Promise<unknown>): Promise<void> {
    this.accountRef = refPart;
    try {
      await change();
    } finally {
      this.accountRef = {};
    }
  }

  private out(frame: ServerFrame): void {
    if (frame.type === 'dm') this.core.metrics?.messageOut(this.options.transport);
    this.peer.send(JSON.stringify(frame));
  }

  private error(code: string, message: string, ref?: string, cid?: string): void {
    this.out({
      type: 'error',
      code,
      message,
      ...(ref === undefined ? {} : { ref }),
      ...(cid === undefined ? {} : { cid }),
    });
  }

  private rejectFrame(code: string, message: string, ref?: string): void {
    this.core.metrics?.rejectedInput(this.options.transport, code.toLowerCase());
    this.error(code, message, ref);
    if (++this.invalid >= (this.options.maxInvalidFrames ?? 50)) {
      this.peer.close(1008, 'too many invalid frames');
    }
  }

  onBinary(): void {
    this.rejectFrame('BAD_FRAME', 'binary frames are not part of the protocol; send JSON text');
  }

  onText(text: string): void {
    if (this.overrun || this.ended) return;
    // Frames are handled one at a time; a client that pipelines faster than that is cut off
    // instead of queueing without bound (by count and by bytes, also before `welcome`).
    this.inflight++;
    this.inflightBytes += text.length;
    if (this.inflight > MAX_INFLIGHT || this.inflightBytes > MAX_INFLIGHT_BYTES) {
      this.overrun = true;
      this.pending.length = 0;
      this.core.metrics?.rejectedInput(this.options.transport, 'too_many_pending');
      this.peer.close(1008, 'too many frames in flight');
      return;
    }
    if (!this.session) this.pending.push(text);
    else this.run(text);
  }

  private run(text: string): void {
    this.chain = this.chain
      .then(() => (this.ended ? undefined : this.handle(text)))
      .catch((err: unknown) => {
        const e = this.core.clientError(err);
        this.error(e.code, e.message);
      })
      .finally(() => {
        this.inflight--;
        this.inflightBytes -= text.length;
      });
  }

  private inflight = 0;
  /** UTF-16 code units of the frames counted in `inflight` (at most 3 bytes each on the wire). */
  private inflightBytes = 0;
  private overrun = false;

  /** Resolves once every frame received so far has been handled. */
  drain(): Promise<void> {
    return this.chain;
  }

  private async handle(text: string): Promise<void> {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.rejectFrame('BAD_JSON', 'frame is not valid JSON');
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.rejectFrame('BAD_JSON', 'frame must be a JSON object');
      return;
    }
    const f = frame as Record<string, unknown>;
    let ref: string | undefined;
    if (f.ref !== undefined) {
      if (typeof f.ref !== 'string' || f.ref.length > MAX_REF) {
        this.rejectFrame('BAD_FRAME', `ref must be a string of at most ${MAX_REF} characters`);
        return;
      }
      ref = f.ref;
    }
    const refPart = ref === undefined ? {} : { ref };
    const str = (name: string): string => {
      const v = f[name];
      if (typeof v !== 'string') throw new FrameError(`field "${name}" must be a string`);
      return v;
    };
    const session = this.session!;
    let cid: string | undefined;
    try {
      switch (f.type) {
        case 'nick':
          await session.setNick(str('nick'));
          this.out({
            type: 'nick',
            nick: session.nick,
            token: tokenFor(this.core, this.options.tokens, session) ?? '',
            ...refPart,
          });
          return;
        case 'register':
          await this.identity(refPart, () =>
            session.register(str('name'), str('password'), this.options.address),
          );
          return;
        case 'login': {
          if (f.token !== undefined) {
            const claims = this.options.tokens.open?.(str('token'));
            if (!claims || typeof claims.ls !== 'string') {
              throw new ChatError('SESSION_ENDED', 'that token is not a live login token; log in again');
            }
            const ls = claims.ls;
            await this.identity(refPart, async () => session.adopt(await this.core.identity.live(ls)));
            return;
          }
          await this.identity(refPart, () =>
            session.login(str('name'), str('password'), this.options.address),
          );
          return;
        }
        case 'logout':
          await this.identity(refPart, () => session.logout());
          return;
        case 'password':
          await this.identity(refPart, () =>
            session.changePassword(str('old'), str('new'), this.options.address),
          );
          return;
        case 'join': {
          const after = f.after === undefined ? undefined : str('after');
          this.joinRef = refPart;
          try {
            await session.join(str('room'), after);
          } finally {
            this.joinRef = {};
          }
          return;
        }
        case 'leave':
          await session.leave(str('room'));
          // `left` event already went out through the sink; nothing more to say.
          return;
        case 'send': {
          // The cid is echoed on the ack and on an error so a client can match either to its send.
          if (f.cid !== undefined) {
            if (typeof f.cid !== 'string') throw new FrameError('field "cid" must be a string');
            cid = f.cid;
          }
          const m = await session.say(str('room'), str('text'), cid);
          this.out({
            type: 'ack',
            id: m.id,
            room: m.room,
            ts: m.ts,
            ...refPart,
            ...(cid === undefined ? {} : { cid }),
          });
          return;
        }
        case 'dm':
          await session.dm(str('to'), str('text'));
          this.out({ type: 'ack', ts: Date.now(), ...refPart });
          return;
        case 'typing':
          await session.typing(str('room'));
          return;
        case 'who': {
          const room = str('room');
          this.out({ type: 'who', room: room.toLowerCase(), members: await session.who(room), ...refPart });
          return;
        }
        case 'rooms':
          this.out({ type: 'rooms', rooms: await this.core.rooms(this.core.principal(session)), ...refPart });
          return;
        case 'create': {
          if (f.private !== undefined && typeof f.private !== 'boolean')
            throw new FrameError('field "private" must be a boolean');
          this.joinRef = refPart;
          try {
            await session.create(str('room'), f.private === true);
          } finally {
            this.joinRef = {};
          }
          return;
        }
        case 'invite': {
          const room = str('room');
          const name = await session.invite(room, str('name'));
          this.out({ type: 'invited', room: room.toLowerCase().replace(/^#/, ''), name, ...refPart });
          return;
        }
        case 'kick': {
          const room = str('room');
          const name = await session.kick(room, str('name'));
          this.out({ type: 'kicked', room: room.toLowerCase().replace(/^#/, ''), name, ...refPart });
          return;
        }
        case 'ping':
          this.out({ type: 'pong', ...refPart });
          return;
        default:
          this.rejectFrame(
            'UNKNOWN_TYPE',
            typeof f.type === 'string' ? `unknown type "${f.type.slice(0, 40)}"` : 'missing "type"',
            ref,
          );
      }
    } catch (err) {
      if (err instanceof FrameError) this.rejectFrame('BAD_FRAME', err.message, ref);
      else if (err instanceof ChatError) {
        if (err.code !== 'RATE_LIMITED')
          this.core.metrics?.rejectedInput(this.options.transport, err.code.toLowerCase());
        this.error(err.code, err.message, ref, err.code === 'CID_INVALID' ? undefined : cid);
      } else {
        const e = this.core.clientError(err, f.type === 'send' ? 'append' : String(f.type));
        if (e.code !== 'OUTCOME_UNKNOWN')
          this.core.metrics?.rejectedInput(this.options.transport, 'store_failed');
        this.error(e.code, e.message, ref, cid);
      }
    }
  }

  /** Connection gone: leave rooms, free the nickname (now, or as soon as start() has a session). */
  async end(): Promise<void> {
    this.ended = true;
    this.pending.length = 0;
    await this.session?.close();
  }

  /** Server shutdown: tell the client why before the transport closes with 1001. */
  bye(reason: string): void {
    this.out({ type: 'bye', reason });
  }
}

class FrameError extends Error {}
