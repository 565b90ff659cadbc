import type { Duplex } from 'node:stream';
import { EMPTY_BUFFER, Opcode } from './constants.js';
import { ConnectionClosedError, InvalidArgumentError, type WebSocketError } from './errors.js';
import type { PerMessageDeflate } from './permessage-deflate.js';
import type { PreparedMessage } from './prepared.js';
import { encodeFrame, encodeTextFrame } from './sender.js';

/** Anything `send()` accepts. Strings go as text unless `binary: true`; bytes go as binary. */
export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

export function toBuffer(data: SendData): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidArgumentError('send() accepts a string, Buffer, ArrayBuffer or ArrayBufferView');
}

/** What the outbound side reports to its connection. */
export interface OutboundOwner {
  /** Queued bytes went above `maxBufferedAmount`. */
  _onOverLimit(): void;
  /** Queued bytes are back at or below `maxBufferedAmount`. */
  _onRelieved(): void;
  /** The compressor failed (`error` null: it was closed): nothing queued behind it can be sent in order. */
  _onOutboundError(error: WebSocketError | null): void;
}

/** Settings shared by every connection made with the same options (see `connectionConfig`). */
export interface OutboundConfig {
  readonly deflateThreshold: number;
  readonly maxBufferedAmount: number;
}

type Resolve = (() => void) | undefined;
type Reject = ((error: Error) => void) | undefined;
/** The promise `resolve`/`reject` settle: marked handled only when it is rejected (see `fail`). */
type Pending = Promise<void> | undefined;

interface QueuedFrame {
  opcode: number;
  payload: Buffer;
  fin: boolean;
  compress: boolean;
  resolve: Resolve;
  reject: Reject;
  promise: Pending;
}

type Waiter = (() => void) | ((error: Error) => void) | Promise<void> | undefined;

const noop = (): void => {};

/**
 * Reject a send's promise without risking an unhandled rejection when the caller ignored it.
 * The handler is attached here, on the rare failing path, rather than a `.catch()` per send:
 * that would cost every message a second promise and a microtask.
 */
function fail(reject: Reject, promise: Pending, error: Error): void {
  if (reject === undefined) return;
  promise?.catch(noop);
  reject(error);
}
// Shared empty placeholders (never pushed to): arrays are created on first use.
const NO_FRAMES: QueuedFrame[] = [];
const NO_WAITERS: Waiter[] = [];

const O_DEFLATING = 1;
const O_FRAGMENT_COMPRESSED = 2;
const O_END_PENDING = 4;
const O_OVER_LIMIT = 8;
const O_PROBING = 16;
const O_CLOSED = 32;
const O_MASKED = 64;

/**
 * Everything one connection writes: framing, message order behind an in-flight compression,
 * the completion callbacks of `send()`, and the `maxBufferedAmount` accounting that every frame
 * goes through, the library's own (pongs, heartbeat pings, close frames) included. It does not
 * decide what a slow consumer deserves; it tells its owner when the limit is crossed and when
 * the queue is back under it.
 */
export class Outbound {
  private readonly socket: Duplex;
  private readonly owner: OutboundOwner;
  private readonly config: OutboundConfig;
  private readonly deflate: PerMessageDeflate | null;
  private flags: number;
  /** Opcode of the outgoing fragmented message in progress, 0 when none. */
  private fragmentOpcode = 0;

  /** Broadcasts and publishes waiting for the fragmented message in progress to end. */
  private held: PreparedMessage[] | null = null;

  // Frames waiting behind an in-flight compression (only used with permessage-deflate).
  private queue: QueuedFrame[] = NO_FRAMES;
  private queuedBytes = 0;

  // Write completions, in write order: [resolve, reject, promise, resolve, reject, promise, ...].
  private writeWaiters: Waiter[] = NO_WAITERS;
  private writeWaitersHead = 0;
  private writeDone: ((error?: Error | null) => void) | null = null;
  private compressed: ((error: WebSocketError | null, data: Buffer | null) => void) | null = null;

  constructor(
    socket: Duplex,
    owner: OutboundOwner,
    config: OutboundConfig,
    deflate: PerMessageDeflate | null,
    masked: boolean,
  ) {
    this.socket = socket;
    this.owner = owner;
    this.config = config;
    this.deflate = deflate;
    this.flags = masked ? O_MASKED : 0;
  }

  /** Client side: frames are masked. */
  private get masked(): boolean {
    return (this.flags & O_MASKED) !== 0;
  }

  /** Bytes accepted and not yet handed to the kernel (socket buffer + compression queue). */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  /** Whether more than `maxBufferedAmount` bytes wait right now. */
  get full(): boolean {
    const limit = this.config.maxBufferedAmount;
    return limit > 0 && this.socket.writableLength + this.queuedBytes > limit;
  }

  /** Whether the limit was crossed and the queue has not been seen under it since. */
  get overLimit(): boolean {
    return (this.flags & O_OVER_LIMIT) !== 0;
  }

  private get deflating(): boolean {
    return (this.flags & O_DEFLATING) !== 0;
  }

  /**
   * The frame of a message prepared for many connections that this one can write as is, or
   * null when it must encode the message itself: client side (masked), inside a fragmented
   * message, behind a compression still running (order), or compressing with context takeover
   * (its compressor's state is its own).
   */
  frameOf(message: PreparedMessage): Buffer | [Buffer, Buffer] | null {
    if (this.masked || this.fragmentOpcode !== 0) return null;
    const deflate = this.deflate;
    if (deflate === null) return message.frame;
    if (this.deflating || this.queue.length > 0) return null;
    if (message.payload.length < this.config.deflateThreshold) return message.frame;
    return deflate.sharedSettings === null ? null : message.compressedFrame(deflate.sharedSettings);
  }

  /** Queue a message or a fragment of one (`fin: false`). */
  message(
    data: SendData,
    binary: boolean,
    fin: boolean,
    compress: boolean,
    resolve: Resolve,
    reject: Reject,
    promise: Pending,
  ): void {
    let opcode: number;
    if (this.fragmentOpcode !== 0) opcode = Opcode.Continuation;
    else opcode = binary ? Opcode.Binary : Opcode.Text;
    this.fragmentOpcode = fin ? 0 : opcode === Opcode.Continuation ? this.fragmentOpcode : opcode;

    if (this.deflate !== null) {
      const payload = toBuffer(data);
      let deflate: boolean;
      if (opcode === Opcode.Continuation) {
        deflate = (this.flags & O_FRAGMENT_COMPRESSED) !== 0;
      } else {
        deflate = compress && payload.length >= this.config.deflateThreshold;
        this.flags = deflate ? this.flags | O_FRAGMENT_COMPRESSED : this.flags & ~O_FRAGMENT_COMPRESSED;
      }
      this.enqueue(opcode, payload, fin, deflate, resolve, reject, promise);
    } else if (typeof data === 'string' && opcode !== Opcode.Binary) {
      if (resolve !== undefined) this.pushWaiter(resolve, reject!, promise!);
      this.socket.write(
        encodeTextFrame(opcode, data, Buffer.byteLength(data), fin, this.masked),
        resolve === undefined ? undefined : this.getWriteDone(),
      );
    } else {
      this.writeFrame(encodeFrame(opcode, toBuffer(data), fin, false, this.masked), resolve, reject, promise);
    }
    if (fin && this.held !== null) this.releaseHeld();
    this.check();
  }

  /**
   * Queue a whole message for many connections (broadcast, publish). Frames of two messages
   * cannot interleave, so during a fragmented `send()` it waits for the final fragment.
   */
  broadcast(message: PreparedMessage): void {
    if (this.fragmentOpcode !== 0) {
      if (this.held === null) this.held = [];
      this.held.push(message);
      this.queuedBytes += message.payload.length;
      this.check();
      return;
    }
    const frame = this.frameOf(message);
    if (frame === null)
      this.message(message.data, message.binary, true, true, undefined, undefined, undefined);
    else this.prepared(frame, undefined, undefined, undefined);
  }

  private releaseHeld(): void {
    const held = this.held!;
    this.held = null;
    for (const message of held) {
      this.queuedBytes -= message.payload.length;
      this.broadcast(message);
    }
  }

  /** Write a frame built once for many connections (check `canWritePrepared` first). */
  prepared(frame: Buffer | [Buffer, Buffer], resolve: Resolve, reject: Reject, promise: Pending): void {
    this.writeFrame(frame, resolve, reject, promise);
    this.check();
  }

  /** Queue a control frame, after any message still being compressed. */
  control(opcode: number, payload: Buffer, resolve: Resolve, reject: Reject, promise: Pending): void {
    if (this.deflate !== null && (this.deflating || this.queue.length > 0)) {
      this.enqueue(opcode, payload, true, false, resolve, reject, promise);
    } else {
      this.writeFrame(encodeFrame(opcode, payload, true, false, this.masked), resolve, reject, promise);
    }
    this.check();
  }

  /** A close frame ends any fragmented message in progress; held broadcasts are dropped. */
  endFragments(): void {
    this.fragmentOpcode = 0;
    if (this.held !== null) {
      for (const message of this.held) this.queuedBytes -= message.payload.length;
      this.held = null;
    }
  }

  /** Half-close the socket once everything queued has been written. */
  end(): void {
    if (this.queue.length > 0 || this.deflating) this.flags |= O_END_PENDING;
    else this.socket.end();
  }

  /** The socket is gone: fail whatever still waits, release the compressor. */
  closed(): void {
    this.flags |= O_CLOSED;
    this.held = null;
    this.deflate?.close();
    const error = new ConnectionClosedError('Connection closed before the data was written');
    for (const job of this.queue) fail(job.reject, job.promise, error);
    this.queue = NO_FRAMES;
    this.queuedBytes = 0;
    const waiters = this.writeWaiters;
    for (let i = this.writeWaitersHead; i + 2 < waiters.length; i += 3) {
      fail(waiters[i + 1] as Reject, waiters[i + 2] as Pending, error);
    }
    this.writeWaiters = NO_WAITERS;
    this.writeWaitersHead = 0;
  }

  // ------------------------------------------------------------- limit accounting

  private check(): void {
    if ((this.flags & O_OVER_LIMIT) !== 0 || !this.full) return;
    this.flags |= O_OVER_LIMIT;
    this.owner._onOverLimit();
    this.watch();
  }

  /**
   * While over the limit, find out when the queue drains. An empty write completes once
   * everything written before it has reached the kernel, on any Duplex (no 'drain' needed,
   * which a stream only emits after `write()` returned false).
   */
  private watch(): void {
    if ((this.flags & (O_OVER_LIMIT | O_CLOSED)) !== O_OVER_LIMIT) return;
    if (!this.full) {
      this.flags &= ~O_OVER_LIMIT;
      this.owner._onRelieved();
      return;
    }
    const socket = this.socket;
    if ((this.flags & O_PROBING) !== 0 || socket.writableLength === 0 || !socket.writable) return;
    // Otherwise only the compression queue is full: onCompressed() looks again.
    this.flags |= O_PROBING;
    // A closure per probe (rare: only while over the limit) rather than a field on every connection.
    socket.write(EMPTY_BUFFER, () => this.onProbe());
  }

  private onProbe(): void {
    this.flags &= ~O_PROBING;
    this.watch();
  }

  // ------------------------------------------------------------- writing

  private pushWaiter(resolve: () => void, reject: (error: Error) => void, promise: Promise<void>): void {
    if (this.writeWaiters === NO_WAITERS) this.writeWaiters = [];
    this.writeWaiters.push(resolve, reject, promise);
  }

  private getWriteDone(): (error?: Error | null) => void {
    if (this.writeDone === null) this.writeDone = (error) => this.onWriteDone(error);
    return this.writeDone;
  }

  private onWriteDone(error?: Error | null): void {
    const waiters = this.writeWaiters;
    const head = this.writeWaitersHead;
    if (head >= waiters.length) return;
    const resolve = waiters[head] as () => void;
    const reject = waiters[head + 1] as Reject;
    const promise = waiters[head + 2] as Pending;
    waiters[head] = undefined;
    waiters[head + 1] = undefined;
    waiters[head + 2] = undefined;
    if (head + 3 === waiters.length) {
      waiters.length = 0;
      this.writeWaitersHead = 0;
    } else {
      this.writeWaitersHead = head + 3;
    }
    if (error) fail(reject, promise, new ConnectionClosedError(`Write failed: ${error.message}`));
    else resolve();
  }

  private writeFrame(
    frame: Buffer | [Buffer, Buffer],
    resolve: Resolve,
    reject: Reject,
    promise: Pending,
  ): void {
    const socket = this.socket;
    const cb = resolve === undefined ? undefined : this.getWriteDone();
    if (resolve !== undefined) this.pushWaiter(resolve, reject!, promise!);
    if (Array.isArray(frame)) {
      socket.cork();
      socket.write(frame[0]);
      socket.write(frame[1], cb);
      socket.uncork();
    } else {
      socket.write(frame, cb);
    }
  }

  private enqueue(
    opcode: number,
    payload: Buffer,
    fin: boolean,
    compress: boolean,
    resolve: Resolve,
    reject: Reject,
    promise: Pending,
  ): void {
    if (this.queue === NO_FRAMES) this.queue = [];
    this.queue.push({ opcode, payload, fin, compress, resolve, reject, promise });
    this.queuedBytes += payload.length;
    if (!this.deflating) this.drainQueue();
  }

  private drainQueue(): void {
    const queue = this.queue;
    while (queue.length > 0 && !this.deflating) {
      const job = queue[0]!;
      if (job.compress) {
        this.flags |= O_DEFLATING;
        if (this.compressed === null) this.compressed = (error, data) => this.onCompressed(error, data);
        this.deflate!.compress(job.payload, job.fin, this.compressed);
        return;
      }
      queue.shift();
      this.queuedBytes -= job.payload.length;
      this.writeFrame(
        encodeFrame(job.opcode, job.payload, job.fin, false, this.masked),
        job.resolve,
        job.reject,
        job.promise,
      );
    }
    if (queue.length === 0 && (this.flags & O_END_PENDING) !== 0) {
      this.flags &= ~O_END_PENDING;
      this.socket.end();
    }
  }

  private onCompressed(error: WebSocketError | null, data: Buffer | null): void {
    const job = this.queue.shift();
    this.flags &= ~O_DEFLATING;
    if (job === undefined) return;
    this.queuedBytes -= job.payload.length;
    if (error !== null || data === null || (this.flags & O_CLOSED) !== 0) {
      fail(job.reject, job.promise, error ?? new ConnectionClosedError());
      if ((this.flags & O_CLOSED) === 0) this.owner._onOutboundError(error);
      return;
    }
    const rsv1 = job.opcode !== Opcode.Continuation;
    this.writeFrame(
      encodeFrame(job.opcode, data, job.fin, rsv1, this.masked),
      job.resolve,
      job.reject,
      job.promise,
    );
    this.drainQueue();
    this.check();
    this.watch();
  }
}
