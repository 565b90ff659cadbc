import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Codec } from './codec.js';
import {
  ConnectionClosedError,
  IdleTimeoutError,
  InvalidFrameError,
  IteratorActiveError,
  PendingBytesExceededError,
  SendStreamActiveError,
  TcpError,
  TruncatedFrameError,
} from './errors.js';
import type { FrameEvent } from './frame-events.js';
import { FrameStreamAssembler } from './frame-stream.js';
import { type Frame, isFrame } from './frame.js';
import { checkInt, MAX_TIMER, type ResolvedConnectionOptions } from './options.js';

/** Events of a `Connection`. */
export type ConnectionEvents<TDecoded> = {
  /** One decoded message. */
  message: [message: TDecoded];
  /** The peer finished sending (FIN received). With `allowHalfOpen` you may still send. */
  end: [];
  /** Outbound bytes fell below `highWaterMark` after `write()` returned false. */
  drain: [];
  /** No traffic for `idleTimeout` ms. The connection then ends with `ERR_IDLE_TIMEOUT`. */
  timeout: [];
  /**
   * A socket error, a protocol error from the codec or an idle timeout. Emitted only when someone
   * listens, so an unhandled one never crashes the process: it still arrives in `close`.
   */
  error: [error: Error];
  /** The socket is fully closed; `error` is why, if it closed abnormally. */
  close: [error: Error | undefined];
};

/** `open` → `ending` (our FIN sent, waiting for the peer) → `closed`. */
export type ConnectionState = 'open' | 'ending' | 'closed';

const EMPTY = Buffer.alloc(0);
/** Smaller writes made in one tick are copied into one buffer; larger ones go out via writev. */
const COALESCE_LIMIT = 8 * 1024;
/** Encode pool size, and the room below which a fresh pool is started. */
const POOL_SIZE = 64 * 1024;
const POOL_MIN_ROOM = 1024;
let pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOffset = 0;
const RESOLVED: Promise<void> = Promise.resolve();
/** sendStream writes a source's chunks as views of at most this size (bounded by the pending limit). */
const STREAM_PIECE = 64 * 1024;
let nextId = 0;
const noop = (): void => {};

function rejected(error: unknown): Promise<never> {
  const promise = Promise.reject(error);
  // Fire-and-forget sends must not turn into unhandled rejections; awaiting callers still see it.
  promise.catch(noop);
  return promise;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(noop);
  return { promise, resolve, reject };
}

interface Waiter<T> {
  resolve: (result: IteratorResult<T, undefined>) => void;
  reject: (error: Error) => void;
}

/**
 * A framed, bidirectional message channel over one TCP/TLS/Unix socket, driving a sans-I/O codec.
 *
 * - Receive with `on('message')` or `for await (const msg of conn)`. Messages that arrive while
 *   nobody consumes them are queued (up to `maxQueuedMessages`, then the socket is paused).
 * - Send with `await send(msg)` (waits for `drain` above `highWaterMark`) or `write(msg)` (returns
 *   false above it). Writes made in the same tick are coalesced into one syscall.
 * - `end()` flushes, half-closes and waits for the peer; `destroy()` drops everything now.
 */
export class Connection<TDecoded = unknown, TEncodable = unknown>
  extends EventEmitter<ConnectionEvents<TDecoded>>
  implements AsyncIterable<TDecoded>
{
  /** Process-wide unique, increasing number: handy as a key or in logs. */
  readonly id: number;
  /** The underlying socket (a `tls.TLSSocket` for TLS connections). */
  readonly socket: Socket;
  /** Peer address, kept after close (the socket forgets it). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly #codec: Codec<TDecoded, TEncodable>;
  readonly #options: ResolvedConnectionOptions;

  #state: ConnectionState = 'open';
  #error: Error | undefined;
  /** Reused for every chunk, so decoding allocates no array. */
  #frames: TDecoded[] = [];
  /** No more messages will arrive (peer FIN, fatal protocol error, or close). */
  #inputDone = false;

  // Outbound: encoded buffers collected during the current tick.
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  /** This connection's not-yet-batched region `[#slabStart, #slabEnd)` of a shared encode pool. */
  #slab: Buffer | undefined;
  #slabStart = 0;
  #slabEnd = 0;
  #drain: Deferred | undefined;
  #needDrainEvent = false;
  /** sendStream() is writing a payload: any other write would land inside the frame. */
  #sendingStream = false;

  // Inbound queue for `for await` and for messages nobody listens to yet.
  #queue: TDecoded[] = [];
  #queueHead = 0;
  #waiter: Waiter<TDecoded> | undefined;
  #iterating = false;
  #pausedByUs = false;
  /** Streaming codecs only (`frameEvents`): events → Buffer / FrameStream messages. */
  readonly #assembler: FrameStreamAssembler | undefined;
  #events: FrameEvent[] = [];
  /** The current FrameStream is full: the socket stays paused until it is read. */
  #pausedByStream = false;
  #replayScheduled = false;

  #closeTimer: NodeJS.Timeout | undefined;
  #idleTimeout: number;
  readonly #closed: Promise<Error | undefined>;
  #resolveClosed!: (error: Error | undefined) => void;

  /** @internal Use `connect()` or `createServer()`; they build connections. */
  constructor(socket: Socket, codec: Codec<TDecoded, TEncodable>, options: ResolvedConnectionOptions) {
    super();
    this.id = ++nextId;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress; // undefined for Unix sockets
    this.remotePort = socket.remotePort;
    this.#codec = codec;
    this.#options = options;
    this.#assembler =
      codec.frameEvents === true
        ? new FrameStreamAssembler((paused) => {
            this.#pausedByStream = paused;
            this.#applyPause();
          })
        : undefined;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });

    socket.setNoDelay(options.noDelay);
    socket.setKeepAlive(options.keepAlive, options.keepAliveInitialDelay);
    this.#idleTimeout = options.idleTimeout;
    if (options.idleTimeout > 0) socket.setTimeout(options.idleTimeout);

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: Error) => this.#onError(error));
    socket.on('timeout', () => this.#onTimeout());
    socket.on('drain', () => this.#checkDrain());
    socket.on('close', () => this.#onClose());
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' && this.#queueLength() > 0 && !this.#iterating) this.#scheduleReplay();
    });
    if (socket.destroyed) process.nextTick(() => this.#onClose());
  }

  // ------------------------------------------------------------------------------------------
  // Introspection

  get state(): ConnectionState {
    return this.#state;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
  /** True for TLS connections. */
  get encrypted(): boolean {
    return this.socket instanceof TLSSocket;
  }
  get bytesRead(): number {
    return this.socket.bytesRead;
  }
  get bytesWritten(): number {
    return this.socket.bytesWritten;
  }
  /** Outbound bytes accepted but not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.#batchBytes + this.socket.writableLength;
  }
  /** Bytes the codec holds for an incomplete incoming frame (bounded by the codec's limit). */
  get bufferedBytes(): number {
    return this.#codec.bufferedBytes;
  }
  /** Why the connection closed (or is closing) abnormally, if it did. */
  get error(): Error | undefined {
    return this.#error;
  }
  /** Resolves (never rejects) once the socket is closed, with the error that closed it, if any. */
  get closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  /** Current idle timeout in ms (0 = none). */
  get idleTimeout(): number {
    return this.#idleTimeout;
  }

  /**
   * Change this connection's idle timeout (e.g. longer once a client has logged in); 0 disables it.
   * The countdown restarts now.
   */
  setIdleTimeout(ms: number): void {
    this.#idleTimeout = checkInt('idleTimeout', ms, 0, MAX_TIMER);
    this.socket.setTimeout(ms);
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  /**
   * Encode and queue a message. Resolves at once while outbound bytes stay below `highWaterMark`,
   * otherwise when the socket drains. Rejects with `ERR_CONNECTION_CLOSED`,
   * `ERR_PENDING_BYTES_EXCEEDED` or the codec's encode error; the message is then not sent.
   * A rejection you do not await is not reported as unhandled.
   */
  send(message: TEncodable): Promise<void> {
    let belowHighWaterMark: boolean;
    try {
      belowHighWaterMark = this.write(message);
    } catch (error) {
      return rejected(error);
    }
    return belowHighWaterMark ? RESOLVED : this.#drainPromise();
  }

  /**
   * Encode and queue a message; returns false when outbound bytes reached `highWaterMark` (wait
   * for `drain`, or use `send`). Throws the same errors `send` rejects with.
   */
  write(message: TEncodable): boolean {
    if (this.#state !== 'open') throw new ConnectionClosedError(`cannot send: connection is ${this.#state}`);
    if (this.#sendingStream) throw new SendStreamActiveError();
    const codec = this.#codec;
    if (codec.encodeInto !== undefined) {
      // Small messages are encoded straight into a process-wide pool (like Node's Buffer pool):
      // no allocation per message, and consecutive messages of one connection form one region.
      if (POOL_SIZE - poolOffset < POOL_MIN_ROOM) {
        pool = Buffer.allocUnsafeSlow(POOL_SIZE);
        poolOffset = 0;
      }
      if (this.#slab !== pool || this.#slabEnd !== poolOffset) {
        this.#sealSlab();
        this.#slab = pool;
        this.#slabStart = this.#slabEnd = poolOffset;
      }
      const written = codec.encodeInto(message, pool, poolOffset);
      if (written >= 0) {
        const pending = this.pendingBytes;
        if (pending > 0 && pending + written > this.#options.maxPendingBytes) {
          throw new PendingBytesExceededError(pending, this.#options.maxPendingBytes);
        }
        poolOffset += written;
        this.#slabEnd = poolOffset;
        this.#batchBytes += written;
        this.#scheduleFlush();
        if (pending + written < this.#options.highWaterMark) return true;
        this.#needDrainEvent = true;
        return false;
      }
    }
    return this.#push(codec.encode(message));
  }

  /**
   * Queue bytes exactly as given, bypassing the codec: a greeting, a banner, a pre-encoded frame.
   * Strings are UTF-8 encoded; a `Frame`'s segments are written by reference (one writev, no
   * concatenation). Same backpressure and limits as `send`.
   */
  sendRaw(data: string | Uint8Array | readonly Uint8Array[] | Frame): Promise<void> {
    let belowHighWaterMark: boolean;
    try {
      belowHighWaterMark = this.writeRaw(data);
    } catch (error) {
      return rejected(error);
    }
    return belowHighWaterMark ? RESOLVED : this.#drainPromise();
  }

  /**
   * `write` without the codec; see `sendRaw`. An array of parts (an encoded message) is accepted
   * or refused as a whole, so a limit can never cut a message in two.
   */
  writeRaw(data: string | Uint8Array | readonly Uint8Array[] | Frame): boolean {
    if (this.#state !== 'open') throw new ConnectionClosedError(`cannot send: connection is ${this.#state}`);
    if (this.#sendingStream) throw new SendStreamActiveError();
    if (typeof data === 'string') return this.#push(Buffer.from(data, 'utf8'));
    return this.#push(isFrame(data) ? data.segments : data);
  }

  /**
   * Send one frame of `length` payload bytes whose payload comes from `source` piece by piece, so
   * a frame of any size costs about `highWaterMark` of memory (the receiving side's counterpart is
   * `frames: 'stream'`). Needs a codec with `encodeHeader` (`lengthPrefixed()`); `length` is
   * checked against `maxFrameLength` before anything is written. Other sends made meanwhile fail
   * with `ERR_SEND_STREAM_ACTIVE`. If `source` throws or yields more or fewer bytes than `length`,
   * the frame on the wire cannot be finished: the connection is destroyed and the promise rejects
   * (`ERR_INVALID_FRAME` for a wrong byte count).
   */
  async sendStream(length: number, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    if (this.#state !== 'open') throw new ConnectionClosedError(`cannot send: connection is ${this.#state}`);
    if (this.#sendingStream) throw new SendStreamActiveError();
    if (this.#codec.encodeHeader === undefined)
      throw new InvalidFrameError('this codec cannot stream a frame (it has no encodeHeader)');
    this.#push(this.#codec.encodeHeader(length));
    this.#sendingStream = true;
    let sent = 0;
    try {
      for await (const chunk of source) {
        if (sent + chunk.byteLength > length)
          throw new InvalidFrameError(`sendStream source yielded more than the ${length} bytes announced`);
        for (let at = 0; at < chunk.byteLength; at += STREAM_PIECE) {
          if (this.#state !== 'open') throw this.#error ?? new ConnectionClosedError();
          const piece = chunk.subarray(at, Math.min(at + STREAM_PIECE, chunk.byteLength));
          if (!this.#push(piece)) await this.#drainPromise();
        }
        sent += chunk.byteLength;
      }
      if (sent !== length)
        throw new InvalidFrameError(`sendStream source ended after ${sent} of the ${length} bytes announced`);
    } catch (error) {
      this.destroy(error as Error);
      throw error;
    } finally {
      this.#sendingStream = false;
    }
  }

  /** Resolves when outbound bytes are below `highWaterMark` (at once if they already are). */
  drained(): Promise<void> {
    if (this.#state === 'closed') return rejected(new ConnectionClosedError());
    return this.pendingBytes < this.#options.highWaterMark ? RESOLVED : this.#drainPromise();
  }

  #push(encoded: Uint8Array | readonly Uint8Array[]): boolean {
    let bytes: number;
    if (encoded instanceof Uint8Array) {
      bytes = encoded.byteLength;
    } else {
      bytes = 0;
      for (let i = 0; i < encoded.length; i++) bytes += encoded[i]!.byteLength;
    }
    const pending = this.pendingBytes;
    if (pending > 0 && pending + bytes > this.#options.maxPendingBytes) {
      throw new PendingBytesExceededError(pending, this.#options.maxPendingBytes);
    }
    this.#sealSlab();
    if (encoded instanceof Uint8Array) this.#batch.push(encoded);
    else for (let i = 0; i < encoded.length; i++) this.#batch.push(encoded[i]!);
    this.#batchBytes += bytes;
    this.#scheduleFlush();
    if (pending + bytes < this.#options.highWaterMark) return true;
    this.#needDrainEvent = true;
    return false;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(Connection.#flushTick, this);
  }

  /** Move the slab's unsent region into the batch, keeping write order. */
  #sealSlab(): void {
    if (this.#slabEnd === this.#slabStart) return;
    this.#batch.push(this.#slab!.subarray(this.#slabStart, this.#slabEnd));
    this.#slabStart = this.#slabEnd;
  }

  static #flushTick(connection: Connection<unknown, unknown>): void {
    connection.#flush();
  }

  /** Hand the tick's batch to the socket: small buffers merged, large ones by reference, one writev. */
  #flush(): void {
    this.#flushScheduled = false;
    this.#sealSlab();
    const batch = this.#batch;
    const count = batch.length;
    if (count === 0) return;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#slabStart = this.#slabEnd;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (count === 1) {
      socket.write(batch[0]!);
    } else {
      socket.cork();
      let runStart = 0;
      let runBytes = 0;
      for (let i = 0; i < count; i++) {
        const length = batch[i]!.byteLength;
        if (length < COALESCE_LIMIT) {
          runBytes += length;
          continue;
        }
        if (i > runStart) writeRun(socket, batch, runStart, i, runBytes);
        socket.write(batch[i]!);
        runStart = i + 1;
        runBytes = 0;
      }
      if (count > runStart) writeRun(socket, batch, runStart, count, runBytes);
      socket.uncork();
    }
    if (this.#drain !== undefined || this.#needDrainEvent) this.#checkDrain();
  }

  #drainPromise(): Promise<void> {
    if (this.#drain === undefined) this.#drain = deferred();
    return this.#drain.promise;
  }

  #checkDrain(): void {
    if (this.#state === 'closed') return;
    const socket = this.socket;
    if (this.pendingBytes >= this.#options.highWaterMark) {
      // Still above our mark. If the socket's own (possibly larger) mark was not hit it will not
      // emit 'drain', so ask for a callback when what is queued now has been flushed.
      if (!socket.writableNeedDrain && this.#batchBytes === 0) socket.write(EMPTY, () => this.#checkDrain());
      return;
    }
    const drain = this.#drain;
    this.#drain = undefined;
    drain?.resolve();
    if (this.#needDrainEvent) {
      this.#needDrainEvent = false;
      this.emit('drain');
    }
  }

  // ------------------------------------------------------------------------------------------
  // Closing

  /**
   * Graceful close: optionally send a last message, flush everything, send FIN, and wait up to
   * `closeTimeout` for the peer to close its side before destroying the socket. Resolves when the
   * socket is closed; never rejects. Idempotent.
   */
  end(message?: TEncodable): Promise<void> {
    if (this.#state === 'open') {
      if (message !== undefined) {
        try {
          this.write(message);
        } catch (error) {
          this.#error ??= error as Error;
        }
      }
      this.#state = 'ending';
      this.#flush();
      this.socket.end();
      this.#closeTimer = setTimeout(() => this.socket.destroy(), this.#options.closeTimeout);
      this.#closeTimer.unref();
    }
    return this.#closed.then(noop);
  }

  /**
   * Close now, dropping unsent data. `error`, if given, is reported by `close` and by the message
   * iterator (it is not emitted as an `error` event).
   */
  destroy(error?: Error): void {
    if (this.#state === 'closed') return;
    if (error !== undefined) this.#error ??= error;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#slabStart = this.#slabEnd;
    this.#state = 'closed';
    this.socket.destroy();
  }

  /** Abort with a TCP RST instead of a FIN (the peer sees ECONNRESET). */
  reset(error?: Error): void {
    if (this.#state === 'closed') return;
    if (error !== undefined) this.#error ??= error;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#slabStart = this.#slabEnd;
    this.#state = 'closed';
    if (this.socket instanceof TLSSocket || typeof this.socket.resetAndDestroy !== 'function') {
      this.socket.destroy();
    } else {
      this.socket.resetAndDestroy();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  #onData(chunk: Buffer): void {
    if (this.#inputDone) return; // after a fatal protocol error: drain and ignore until close
    const out = this.#frames;
    try {
      this.#decode(chunk, out);
    } catch (error) {
      this.#deliver(out);
      this.#onProtocolError(error);
      return;
    }
    if (out.length > 0) this.#deliver(out);
  }

  /** Codec `decode` (or `end` for `undefined`); a streaming codec's events become messages. */
  #decode(chunk: Uint8Array | undefined, out: TDecoded[]): void {
    const assembler = this.#assembler;
    if (assembler === undefined) {
      if (chunk === undefined) this.#codec.end(out);
      else this.#codec.decode(chunk, out);
      return;
    }
    const events = this.#events;
    const codec = this.#codec as unknown as Codec<FrameEvent, TEncodable>;
    try {
      if (chunk === undefined) codec.end(events);
      else codec.decode(chunk, events);
    } finally {
      assembler.translate(events, out);
    }
  }

  #applyPause(): void {
    if (this.socket.destroyed) return;
    if (this.#pausedByUs || this.#pausedByStream) this.socket.pause();
    else this.socket.resume();
  }

  #onProtocolError(error: unknown): void {
    const out = this.#frames;
    for (;;) {
      const err = error instanceof Error ? error : new InvalidFrameError(String(error));
      this.#emitError(err);
      const recover =
        this.#options.protocolErrors === 'continue' &&
        err instanceof TcpError &&
        err.recoverable &&
        this.#state === 'open';
      if (!recover) {
        this.#error ??= err;
        this.#finishInput();
        if (this.#state === 'open') this.end();
        return;
      }
      try {
        this.#decode(EMPTY, out);
        this.#deliver(out);
        return;
      } catch (next) {
        this.#deliver(out);
        error = next;
      }
    }
  }

  #deliver(out: TDecoded[]): void {
    const count = out.length;
    if (count === 0) return;
    const emitting = this.listenerCount('message') > 0;
    const queueing = this.#iterating || !emitting;
    try {
      for (let i = 0; i < count; i++) {
        const message = out[i]!;
        if (emitting) this.emit('message', message);
        if (queueing) this.#enqueue(message);
      }
    } catch (error) {
      out.length = 0;
      this.#listenerThrew(error);
      return;
    }
    out.length = 0;
  }

  /**
   * A listener threw while we were dispatching from a socket event. Letting it propagate would
   * take down the whole process (and every other connection), so it closes this connection only.
   */
  #listenerThrew(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.#error ??= err;
    this.#finishInput();
    this.#emitError(err);
    this.destroy(err);
  }

  #enqueue(message: TDecoded): void {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value: message, done: false });
      return;
    }
    this.#queue.push(message);
    if (!this.#pausedByUs && this.#queueLength() >= this.#options.maxQueuedMessages) {
      this.#pausedByUs = true;
      this.#applyPause();
    }
  }

  #queueLength(): number {
    return this.#queue.length - this.#queueHead;
  }

  #dequeue(): TDecoded {
    const message = this.#queue[this.#queueHead]!;
    (this.#queue as (TDecoded | undefined)[])[this.#queueHead] = undefined;
    this.#queueHead++;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    if (this.#pausedByUs && this.#queueLength() <= this.#options.maxQueuedMessages >> 1) {
      this.#pausedByUs = false;
      this.#applyPause();
    }
    return message;
  }

  #scheduleReplay(): void {
    if (this.#replayScheduled) return;
    this.#replayScheduled = true;
    process.nextTick(() => {
      this.#replayScheduled = false;
      while (!this.#iterating && this.#queueLength() > 0 && this.listenerCount('message') > 0) {
        this.emit('message', this.#dequeue());
      }
    });
  }

  #onEnd(): void {
    if (!this.#inputDone) {
      const out = this.#frames;
      try {
        this.#decode(undefined, out);
      } catch (error) {
        this.#deliver(out);
        const err = error instanceof Error ? error : new TruncatedFrameError(0);
        this.#error ??= err;
        this.#emitError(err);
      }
      this.#deliver(out);
      this.#finishInput();
    }
    try {
      this.emit('end');
    } catch (error) {
      this.#listenerThrew(error);
      return;
    }
    if (!this.#options.allowHalfOpen && this.#state === 'open') this.end();
  }

  #onError(error: Error): void {
    this.#error ??= error;
    this.#emitError(error);
  }

  #onTimeout(): void {
    if (this.#state === 'closed') return;
    try {
      this.emit('timeout');
    } catch (error) {
      this.#listenerThrew(error);
      return;
    }
    if (this.state === 'closed') return;
    const error = new IdleTimeoutError(this.#idleTimeout);
    this.#error ??= error;
    this.#emitError(error);
    if (this.#state === 'open') this.end();
    else this.socket.destroy();
  }

  #onClose(): void {
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#state = 'closed';
    this.#batch = [];
    this.#batchBytes = 0;
    this.#slabStart = this.#slabEnd;
    this.#finishInput();
    const drain = this.#drain;
    this.#drain = undefined;
    drain?.reject(this.#error ?? new ConnectionClosedError());
    this.#resolveClosed(this.#error);
    try {
      this.emit('close', this.#error);
    } catch (error) {
      // Nothing is left to close; report it the way Node reports any uncaught listener error,
      // but outside the socket's own event dispatch.
      process.nextTick(() => {
        throw error;
      });
    }
  }

  #emitError(error: Error): void {
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', error);
    } catch (thrown) {
      this.#error ??= thrown instanceof Error ? thrown : new Error(String(thrown));
      this.#finishInput();
      this.destroy();
    }
  }

  #finishInput(): void {
    if (this.#inputDone) return;
    this.#inputDone = true;
    this.#assembler?.abort(this.#error);
    if (this.#queueLength() === 0) this.#settleWaiter();
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    if (this.#error !== undefined) waiter.reject(this.#error);
    else waiter.resolve({ value: undefined, done: true });
  }

  /**
   * Iterate over incoming messages. The loop ends when the peer ends the stream and throws if the
   * connection failed (socket error, protocol error, idle timeout). Breaking out of the loop does
   * not close the connection. One iterator at a time.
   */
  [Symbol.asyncIterator](): AsyncIterator<TDecoded, undefined> {
    if (this.#iterating) throw new IteratorActiveError();
    this.#iterating = true;
    let finished = false;
    const stop = (): void => {
      if (finished) return;
      finished = true;
      this.#iterating = false;
      if (this.listenerCount('message') > 0 && this.#queueLength() > 0) this.#scheduleReplay();
    };
    return {
      next: () => {
        if (finished) return Promise.resolve({ value: undefined, done: true });
        if (this.#queueLength() > 0) return Promise.resolve({ value: this.#dequeue(), done: false });
        if (this.#inputDone) {
          stop();
          return this.#error !== undefined
            ? Promise.reject(this.#error)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise<IteratorResult<TDecoded, undefined>>((resolve, reject) => {
          this.#waiter = {
            resolve: (result) => {
              if (result.done) stop();
              resolve(result);
            },
            reject: (error) => {
              stop();
              reject(error);
            },
          };
        });
      },
      return: () => {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        stop();
        waiter?.resolve({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

function writeRun(socket: Socket, batch: Uint8Array[], start: number, end: number, bytes: number): void {
  if (end - start === 1) {
    socket.write(batch[start]!);
    return;
  }
  const merged = Buffer.allocUnsafe(bytes);
  let offset = 0;
  for (let i = start; i < end; i++) {
    const part = batch[i]!;
    merged.set(part, offset);
    offset += part.byteLength;
  }
  socket.write(merged);
}
