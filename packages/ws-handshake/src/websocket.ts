import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { EMPTY_BUFFER, isValidWireCloseCode, Opcode, ReadyState } from './constants.js';
import {
  CloseTimeoutError,
  ConnectionClosedError,
  HeartbeatTimeoutError,
  InvalidArgumentError,
  SlowConsumerError,
  SocketError,
  type WebSocketError,
} from './errors.js';
import {
  type ConnectionOptions,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_ITERATOR_HWM,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_MAX_PAYLOAD,
  type SlowConsumerPolicy,
} from './options.js';
import type { PerMessageDeflate } from './permessage-deflate.js';
import { Receiver, type ReceiverSink } from './receiver.js';
import { closePayload, encodeFrame, encodeTextFrame } from './sender.js';

/** A received message: `string` for text, `Buffer` for binary. */
export type MessageData = string | Buffer;

/** Anything `send()` accepts. Strings go as text unless `binary: true`; bytes go as binary. */
export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

export interface WebSocketEvents {
  /** A complete message: `string` for text, `Buffer` for binary. */
  message: [data: MessageData, isBinary: boolean];
  /**
   * The connection is closed (TCP included). `code` is the peer's close code (1005 when its
   * close frame had none), the code we failed the connection with (1002, 1007, 1009...), or 1006
   * when it ended without a closing handshake.
   */
  close: [code: number, reason: string];
  /** Why the connection failed. Emitted only when there is a listener; see also `closeError`. */
  error: [error: WebSocketError];
  ping: [data: Buffer];
  pong: [data: Buffer];
}

export interface SendOptions {
  /** Send as a binary message. @default true for bytes, false for strings */
  binary?: boolean;
  /** `false` sends this as a fragment; the message ends with the next `fin: true` send. @default true */
  fin?: boolean;
  /** Compress when permessage-deflate is negotiated and the message reaches the threshold. @default true */
  compress?: boolean;
}

/** @internal What the handshake decided, handed to the connection. */
export interface ConnectionSetup {
  isServer: boolean;
  url: string;
  protocol: string;
  extensions: string;
  deflate: PerMessageDeflate | null;
  deflateThreshold: number;
  heartbeatInterval: number;
}

/** A server frame built once and written to many connections (see `WebSocketServer.broadcast`). */
export class PreparedMessage {
  readonly binary: boolean;
  readonly payload: Buffer;
  /** The unmasked frame bytes. */
  readonly frame: Buffer | [Buffer, Buffer];
  constructor(data: SendData, binary?: boolean) {
    this.binary = binary ?? typeof data !== 'string';
    this.payload = toBuffer(data);
    this.frame = encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, this.payload, true, false, false);
  }
}

interface QueuedFrame {
  opcode: number;
  payload: Buffer;
  fin: boolean;
  compress: boolean;
  resolve: (() => void) | undefined;
  reject: ((error: Error) => void) | undefined;
}

function toBuffer(data: SendData): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidArgumentError('send() accepts a string, Buffer, ArrayBuffer or ArrayBufferView');
}

const noop = (): void => {};

type Waiter = (() => void) | ((error: Error) => void) | undefined;
// Shared empty placeholders (never pushed to): arrays are created on first use.
const NO_FRAMES: QueuedFrame[] = [];
const NO_WAITERS: Waiter[] = [];

// Promise executors run synchronously, so one module-level executor can hand the resolving
// functions over without allocating a closure per send.
let capturedResolve: () => void = noop;
let capturedReject: (error: Error) => void = noop;
function capture(resolve: () => void, reject: (error: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

const kConnection = Symbol('websocket');
const F_CLOSE_SENT = 1;
const F_CLOSE_RECEIVED = 2;
const F_SLOW = 4;
const F_END_PENDING = 8;
const F_STARTED = 16;
const F_ALIVE = 32;
const F_HEARTBEAT = 64;
const F_FRAGMENT_COMPRESSED = 128;
const F_DEFLATING = 256;

interface ConnectionConfig {
  deflateThreshold: number;
  maxBufferedAmount: number;
  slowConsumer: SlowConsumerPolicy;
  closeTimeout: number;
  heartbeatInterval: number;
  iteratorHighWaterMark: number;
}

// A server hands the same options object to every connection: resolve it once.
const configs = new WeakMap<ConnectionOptions, ConnectionConfig[]>();
function connectionConfig(options: ConnectionOptions, setup: ConnectionSetup): ConnectionConfig {
  let list = configs.get(options);
  if (list === undefined) {
    list = [];
    configs.set(options, list);
  }
  for (const c of list) {
    if (c.deflateThreshold === setup.deflateThreshold && c.heartbeatInterval === setup.heartbeatInterval)
      return c;
  }
  const config: ConnectionConfig = {
    deflateThreshold: setup.deflateThreshold,
    maxBufferedAmount: options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED,
    slowConsumer: options.slowConsumer ?? 'close',
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    heartbeatInterval: setup.heartbeatInterval,
    iteratorHighWaterMark: options.iteratorHighWaterMark ?? DEFAULT_ITERATOR_HWM,
  };
  if (list.length < 4) list.push(config);
  return config;
}

const PAUSE_ITERATOR = 1;
const PAUSE_INFLATE = 2;
type OwnedSocket = Duplex & { [kConnection]?: WebSocket };

// Socket listeners are shared functions that find their connection through the socket, so
// an idle connection does not carry a set of bound closures.
function socketOnData(this: OwnedSocket, chunk: Buffer): void {
  this[kConnection]!._onData(chunk);
}
function socketOnEnd(this: OwnedSocket): void {
  // The peer half-closed. Without a close frame this is an abnormal closure (1006).
  this.end();
}
function socketOnError(this: OwnedSocket, error: Error): void {
  this[kConnection]!._onSocketError(error);
}
function socketOnClose(this: OwnedSocket): void {
  this[kConnection]!._onSocketClose();
}
function startConnection(ws: WebSocket): void {
  ws._start();
}
function closeTimedOut(ws: WebSocket): void {
  ws._onCloseTimeout();
}

// One interval per heartbeat period for all connections using it, instead of a timer each.
const heartbeats = new Map<number, { timer: NodeJS.Timeout; sockets: Set<WebSocket> }>();
function heartbeatTick(interval: number): void {
  const group = heartbeats.get(interval);
  if (group === undefined) return;
  for (const ws of group.sockets) ws._heartbeat();
}
function heartbeatAdd(ws: WebSocket, interval: number): void {
  let group = heartbeats.get(interval);
  if (group === undefined) {
    const timer = setInterval(heartbeatTick, interval, interval);
    timer.unref();
    group = { timer, sockets: new Set() };
    heartbeats.set(interval, group);
  }
  group.sockets.add(ws);
}
function heartbeatRemove(ws: WebSocket, interval: number): void {
  const group = heartbeats.get(interval);
  if (group === undefined) return;
  group.sockets.delete(ws);
  if (group.sockets.size === 0) {
    clearInterval(group.timer);
    heartbeats.delete(interval);
  }
}

function rejected(error: Error): Promise<void> {
  const p = Promise.reject(error);
  p.catch(noop);
  return p;
}

/**
 * One WebSocket connection, server or client side. Obtained from `handleUpgrade()`,
 * `WebSocketServer`'s `connection` event, or `connect()`.
 *
 * Promises returned by `send()`, `ping()`, `pong()` resolve once the bytes are handed to the
 * kernel and reject if the connection dies first; they never cause unhandled rejections when
 * ignored, so fire-and-forget sending is safe.
 */
export class WebSocket
  extends EventEmitter<WebSocketEvents>
  implements AsyncIterable<MessageData>, ReceiverSink
{
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  /** 1 open, 2 closing, 3 closed (0 is never observed: connections are created open). */
  readyState: ReadyState = ReadyState.OPEN;
  /** The negotiated subprotocol, '' for none. */
  readonly protocol: string;
  /** The negotiated Sec-WebSocket-Extensions value, '' for none. */
  readonly extensions: string;
  readonly isServer: boolean;
  /** Client: the URL connected to. Server: the request target (path and query). */
  readonly url: string;
  /** Set once closed: see the `close` event. */
  closeCode: number | undefined;
  closeReason = '';
  /** Why the connection failed, if it did (protocol error, timeout, socket error...). */
  closeError: WebSocketError | undefined;

  private readonly socket: Duplex;
  private readonly receiver: Receiver;
  private readonly deflate: PerMessageDeflate | null;
  /** Settings shared by every connection created with the same options object. */
  private readonly config: ConnectionConfig;
  private readonly masked: boolean;
  /** Boolean state packed into one field (see the F_* bits). */
  private flags = F_ALIVE;

  private closeTimer: NodeJS.Timeout | undefined;
  private pauseReasons = 0;
  private head: Buffer | null;
  /** @internal The server's client set this connection removes itself from on close. */
  _owner: Set<WebSocket> | null = null;

  /** Opcode of the outgoing fragmented message in progress, 0 when none. */
  private fragmentOpcode = 0;

  // Frames waiting behind an in-flight compression (only used with permessage-deflate).
  private queue: QueuedFrame[] = NO_FRAMES;
  private queuedBytes = 0;

  // Write completions, in write order: [resolve, reject, resolve, reject, ...].
  private writeWaiters: Waiter[] = NO_WAITERS;
  private writeWaitersHead = 0;
  private writeDone: ((error?: Error | null) => void) | null = null;
  private compressed: ((error: WebSocketError | null, data: Buffer | null) => void) | null = null;
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;

  /** @internal Use `handleUpgrade()`, `WebSocketServer` or `connect()`. */
  constructor(socket: Duplex, head: Buffer | null, setup: ConnectionSetup, options: ConnectionOptions) {
    super();
    this.socket = socket;
    this.head = head !== null && head.length > 0 ? head : null;
    this.isServer = setup.isServer;
    this.url = setup.url;
    this.masked = !setup.isServer;
    this.protocol = setup.protocol;
    this.extensions = setup.extensions;
    this.deflate = setup.deflate;
    this.config = connectionConfig(options, setup);
    this.receiver = new Receiver(this, {
      isServer: setup.isServer,
      maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      inflater: setup.deflate,
    });
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('error', socketOnError);
    socket.on('end', socketOnEnd);
    socket.on('close', socketOnClose);
    const s = socket as Partial<import('node:net').Socket>;
    s.setNoDelay?.(true);
    s.setTimeout?.(0);
    // Reading starts on the next turn of the event loop, so listeners attached right after
    // `await handleUpgrade()` / `await connect()` see the first message.
    socket.pause();
    setImmediate(startConnection, this);
  }

  private get deflateThreshold(): number {
    return this.config.deflateThreshold;
  }
  private get maxBufferedAmount(): number {
    return this.config.maxBufferedAmount;
  }
  private get slowConsumer(): SlowConsumerPolicy {
    return this.config.slowConsumer;
  }
  private get closeTimeout(): number {
    return this.config.closeTimeout;
  }
  private get heartbeatInterval(): number {
    return this.config.heartbeatInterval;
  }
  /** @internal */
  get iteratorHighWaterMark(): number {
    return this.config.iteratorHighWaterMark;
  }
  private get closeSent(): boolean {
    return (this.flags & F_CLOSE_SENT) !== 0;
  }
  private set closeSent(on: boolean) {
    this.flags = on ? this.flags | F_CLOSE_SENT : this.flags & ~F_CLOSE_SENT;
  }
  private get closeReceived(): boolean {
    return (this.flags & F_CLOSE_RECEIVED) !== 0;
  }
  private set closeReceived(on: boolean) {
    this.flags = on ? this.flags | F_CLOSE_RECEIVED : this.flags & ~F_CLOSE_RECEIVED;
  }
  private get slowTriggered(): boolean {
    return (this.flags & F_SLOW) !== 0;
  }
  private set slowTriggered(on: boolean) {
    this.flags = on ? this.flags | F_SLOW : this.flags & ~F_SLOW;
  }
  private get endPending(): boolean {
    return (this.flags & F_END_PENDING) !== 0;
  }
  private set endPending(on: boolean) {
    this.flags = on ? this.flags | F_END_PENDING : this.flags & ~F_END_PENDING;
  }
  private get started(): boolean {
    return (this.flags & F_STARTED) !== 0;
  }
  private set started(on: boolean) {
    this.flags = on ? this.flags | F_STARTED : this.flags & ~F_STARTED;
  }
  private get alive(): boolean {
    return (this.flags & F_ALIVE) !== 0;
  }
  private set alive(on: boolean) {
    this.flags = on ? this.flags | F_ALIVE : this.flags & ~F_ALIVE;
  }
  private get heartbeatActive(): boolean {
    return (this.flags & F_HEARTBEAT) !== 0;
  }
  private set heartbeatActive(on: boolean) {
    this.flags = on ? this.flags | F_HEARTBEAT : this.flags & ~F_HEARTBEAT;
  }
  private get fragmentCompressed(): boolean {
    return (this.flags & F_FRAGMENT_COMPRESSED) !== 0;
  }
  private set fragmentCompressed(on: boolean) {
    this.flags = on ? this.flags | F_FRAGMENT_COMPRESSED : this.flags & ~F_FRAGMENT_COMPRESSED;
  }
  private get deflating(): boolean {
    return (this.flags & F_DEFLATING) !== 0;
  }
  private set deflating(on: boolean) {
    this.flags = on ? this.flags | F_DEFLATING : this.flags & ~F_DEFLATING;
  }

  /** Bytes accepted by `send()` but not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  /** Remote IP address, when the transport is a TCP socket. */
  get remoteAddress(): string | undefined {
    return (this.socket as Partial<import('node:net').Socket>).remoteAddress;
  }

  /** @internal */
  _start(): void {
    if (this.started) return;
    this.started = true;
    if (this.readyState === ReadyState.CLOSED) return;
    if (this.heartbeatInterval > 0 && !this.closeSent) {
      this.heartbeatActive = true;
      heartbeatAdd(this, this.heartbeatInterval);
    }
    const head = this.head;
    this.head = null;
    if (head !== null) this.receiver.push(head);
    this.socket.on('data', socketOnData);
    if (this.pauseReasons === 0) this.socket.resume();
  }

  // ---------------------------------------------------------------- sending

  /**
   * Send a message (or a fragment with `fin: false`). Resolves when written to the socket.
   * Rejects with `ConnectionClosedError` once the closing handshake has started.
   */
  send(data: SendData, options?: SendOptions): Promise<void> {
    if (this.readyState !== ReadyState.OPEN || this.closeSent) {
      return rejected(new ConnectionClosedError());
    }
    let binary: boolean;
    let fin = true;
    if (options === undefined) {
      binary = typeof data !== 'string';
    } else {
      binary = options.binary ?? typeof data !== 'string';
      fin = options.fin ?? true;
    }
    let opcode: number;
    if (this.fragmentOpcode !== 0) {
      opcode = Opcode.Continuation;
    } else {
      opcode = binary ? Opcode.Binary : Opcode.Text;
    }
    this.fragmentOpcode = fin ? 0 : opcode === Opcode.Continuation ? this.fragmentOpcode : opcode;

    const promise = new Promise<void>(capture);
    promise.catch(noop);
    const resolve = capturedResolve;
    const reject = capturedReject;

    if (this.deflate !== null) {
      const payload = toBuffer(data);
      let compress: boolean;
      if (opcode === Opcode.Continuation) {
        compress = this.fragmentCompressed;
      } else {
        compress = options?.compress !== false && payload.length >= this.deflateThreshold;
        this.fragmentCompressed = compress;
      }
      this.enqueue(opcode, payload, fin, compress, resolve, reject);
    } else if (typeof data === 'string' && opcode !== Opcode.Binary) {
      this.pushWaiter(resolve, reject);
      this.socket.write(
        encodeTextFrame(opcode, data, Buffer.byteLength(data), fin, this.masked),
        this.getWriteDone(),
      );
    } else {
      this.writeFrame(encodeFrame(opcode, toBuffer(data), fin, false, this.masked), resolve, reject);
    }
    this.checkBuffered();
    return promise;
  }

  /**
   * Send a message prepared once for many connections. Uses the prebuilt frame when it is valid
   * for this connection (server side, no compression of this message), else `send()`.
   */
  sendPrepared(message: PreparedMessage): Promise<void> {
    if (
      !this.isServer ||
      this.fragmentOpcode !== 0 ||
      (this.deflate !== null && (message.payload.length >= this.deflateThreshold || this.deflating))
    ) {
      return this.send(message.binary ? message.payload : message.payload.toString(), {
        binary: message.binary,
      });
    }
    if (this.readyState !== ReadyState.OPEN || this.closeSent) {
      return rejected(new ConnectionClosedError());
    }
    const promise = new Promise<void>(capture);
    promise.catch(noop);
    this.writeFrame(message.frame, capturedResolve, capturedReject);
    this.checkBuffered();
    return promise;
  }

  /**
   * @internal Fire-and-forget variant for broadcast: no promise per recipient. Returns false
   * when the connection is not open.
   */
  _broadcast(message: PreparedMessage): boolean {
    if (this.readyState !== ReadyState.OPEN || this.closeSent) return false;
    if (
      !this.isServer ||
      this.fragmentOpcode !== 0 ||
      (this.deflate !== null && (message.payload.length >= this.deflateThreshold || this.deflating))
    ) {
      this.sendPrepared(message);
      return true;
    }
    this.writeFrame(message.frame, undefined, undefined);
    this.checkBuffered();
    return true;
  }

  /** Send a ping (payload up to 125 bytes). The peer's pong arrives as a `pong` event. */
  ping(data?: SendData): Promise<void> {
    return this.control(Opcode.Ping, data);
  }

  /** Send an unsolicited pong (pings are answered automatically). */
  pong(data?: SendData): Promise<void> {
    return this.control(Opcode.Pong, data);
  }

  private control(opcode: number, data: SendData | undefined): Promise<void> {
    const payload = data === undefined ? EMPTY_BUFFER : toBuffer(data);
    if (payload.length > 125)
      throw new InvalidArgumentError('Control frame payload must be at most 125 bytes');
    if (this.readyState !== ReadyState.OPEN || this.closeSent) {
      return rejected(new ConnectionClosedError());
    }
    const promise = new Promise<void>(capture);
    promise.catch(noop);
    this.sendControl(opcode, payload, capturedResolve, capturedReject);
    return promise;
  }

  private pushWaiter(resolve: () => void, reject: (error: Error) => void): void {
    if (this.writeWaiters === NO_WAITERS) this.writeWaiters = [];
    this.writeWaiters.push(resolve, reject);
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
    const reject = waiters[head + 1] as (error: Error) => void;
    waiters[head] = undefined;
    waiters[head + 1] = undefined;
    if (head + 2 === waiters.length) {
      waiters.length = 0;
      this.writeWaitersHead = 0;
    } else {
      this.writeWaitersHead = head + 2;
    }
    if (error) reject(new ConnectionClosedError(`Write failed: ${error.message}`));
    else resolve();
  }

  private writeFrame(
    frame: Buffer | [Buffer, Buffer],
    resolve: (() => void) | undefined,
    reject: ((error: Error) => void) | undefined,
  ): void {
    const socket = this.socket;
    const cb = resolve === undefined ? undefined : this.getWriteDone();
    if (resolve !== undefined) this.pushWaiter(resolve, reject!);
    if (Array.isArray(frame)) {
      socket.cork();
      socket.write(frame[0]);
      socket.write(frame[1], cb);
      socket.uncork();
    } else {
      socket.write(frame, cb);
    }
  }

  private sendControl(
    opcode: number,
    payload: Buffer,
    resolve: (() => void) | undefined,
    reject: ((error: Error) => void) | undefined,
  ): void {
    if (this.deflate !== null && (this.deflating || this.queue.length > 0)) {
      this.enqueue(opcode, payload, true, false, resolve, reject);
    } else {
      this.writeFrame(encodeFrame(opcode, payload, true, false, this.masked), resolve, reject);
    }
  }

  private enqueue(
    opcode: number,
    payload: Buffer,
    fin: boolean,
    compress: boolean,
    resolve: (() => void) | undefined,
    reject: ((error: Error) => void) | undefined,
  ): void {
    if (this.queue === NO_FRAMES) this.queue = [];
    this.queue.push({ opcode, payload, fin, compress, resolve, reject });
    this.queuedBytes += payload.length;
    if (!this.deflating) this.drainQueue();
  }

  private drainQueue(): void {
    const queue = this.queue;
    while (queue.length > 0 && !this.deflating) {
      const job = queue[0]!;
      if (job.compress) {
        this.deflating = true;
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
      );
    }
    if (queue.length === 0 && this.endPending) {
      this.endPending = false;
      this.socket.end();
    }
  }

  private onCompressed(error: WebSocketError | null, data: Buffer | null): void {
    const job = this.queue.shift();
    this.deflating = false;
    if (job === undefined) return;
    this.queuedBytes -= job.payload.length;
    if (error !== null || data === null || this.readyState === ReadyState.CLOSED) {
      job.reject?.(error ?? new ConnectionClosedError());
      if (this.readyState !== ReadyState.CLOSED) {
        // The compressor is broken: nothing queued behind it can be sent in order.
        if (error !== null) {
          this.closeError ??= error;
          this.emitError(error);
        }
        this.terminate();
      }
      return;
    }
    const rsv1 = job.opcode !== Opcode.Continuation;
    this.writeFrame(encodeFrame(job.opcode, data, job.fin, rsv1, this.masked), job.resolve, job.reject);
    this.drainQueue();
  }

  private checkBuffered(): void {
    if (this.maxBufferedAmount <= 0 || this.slowTriggered) return;
    if (this.socket.writableLength + this.queuedBytes <= this.maxBufferedAmount) return;
    this.slowTriggered = true;
    const error = new SlowConsumerError(this.maxBufferedAmount);
    this.closeError ??= error;
    this.closeCode ??= 1008;
    this.emitError(error);
    if (this.slowConsumer === 'terminate') {
      this.terminate();
    } else if (!this.closeSent) {
      this.sendClose(1008, 'Slow consumer');
    }
  }

  // ---------------------------------------------------------------- closing

  /**
   * Start the closing handshake. Resolves once the connection is fully closed (the peer
   * answered, or `closeTimeout` elapsed and the socket was destroyed). Codes allowed: 1000-1003,
   * 1007-1014, 3000-4999; the reason is at most 123 UTF-8 bytes.
   */
  close(code = 1000, reason = ''): Promise<void> {
    if (!isValidWireCloseCode(code)) throw new InvalidArgumentError(`Invalid close code ${code}`);
    if (Buffer.byteLength(reason) > 123) {
      throw new InvalidArgumentError('Close reason must be at most 123 bytes of UTF-8');
    }
    const closed = this.whenClosed();
    if (this.readyState !== ReadyState.CLOSED && !this.closeSent) this.sendClose(code, reason);
    return closed;
  }

  /** Destroy the socket now, without a closing handshake (the close code will be 1006). */
  terminate(): void {
    // Nothing more is delivered, even frames left in the chunk being parsed.
    this.receiver.destroy();
    this.socket.destroy();
  }

  /** Resolves when the connection is closed. */
  whenClosed(): Promise<void> {
    if (this.readyState === ReadyState.CLOSED) return Promise.resolve();
    if (this.closedPromise === undefined) {
      this.closedPromise = new Promise<void>((resolve) => {
        this.resolveClosed = resolve;
      });
    }
    return this.closedPromise;
  }

  private sendClose(code: number | undefined, reason: string): void {
    this.closeSent = true;
    this.fragmentOpcode = 0;
    if (this.readyState === ReadyState.OPEN) this.readyState = ReadyState.CLOSING;
    this.sendControl(Opcode.Close, closePayload(code, reason), undefined, undefined);
    if (this.closeReceived) {
      this.afterCloseHandshake();
    }
    this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== undefined || this.readyState === ReadyState.CLOSED) return;
    this.closeTimer = setTimeout(closeTimedOut, this.closeTimeout, this);
  }

  /** @internal */
  _onCloseTimeout(): void {
    // With both close frames exchanged only the TCP teardown is late: not a failure.
    if (!(this.closeSent && this.closeReceived)) this.closeError ??= new CloseTimeoutError(this.closeTimeout);
    this.socket.destroy();
  }

  /**
   * Both close frames exchanged: the server closes TCP first (RFC 6455 §7.1.1); the client
   * waits for the server's FIN, bounded by the close timer.
   */
  private afterCloseHandshake(): void {
    if (this.isServer) this.endSocket();
  }

  private endSocket(): void {
    if (this.queue.length > 0 || this.deflating) this.endPending = true;
    else this.socket.end();
  }

  private failConnection(error: WebSocketError): void {
    this.closeError ??= error;
    this.closeCode ??= error.closeCode ?? 1006;
    this.stopHeartbeat();
    if (!this.closeSent) {
      this.closeSent = true;
      if (this.readyState === ReadyState.OPEN) this.readyState = ReadyState.CLOSING;
      this.sendControl(Opcode.Close, closePayload(error.closeCode ?? 1002, ''), undefined, undefined);
    }
    // Keep reading (and discarding) until the peer closes, so unread data does not turn our
    // FIN into a RST that could destroy the close frame in flight.
    this.readToEnd();
    this.endSocket();
    this.armCloseTimer();
    this.emitError(error);
  }

  private emitError(error: WebSocketError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  // ---------------------------------------------------------------- receiving

  /** @internal */
  _onData(chunk: Buffer): void {
    this.alive = true;
    // Replies sent from message handlers during this chunk (echoes, pongs, request/response)
    // leave in one writev instead of one syscall each.
    const socket = this.socket;
    socket.cork();
    try {
      this.receiver.push(chunk);
    } finally {
      socket.uncork();
    }
  }

  /** @internal Receiver sink. */
  onMessage(data: MessageData, isBinary: boolean): void {
    this.emit('message', data, isBinary);
  }

  /** @internal Receiver sink. */
  onPing(data: Buffer): void {
    if (this.readyState === ReadyState.OPEN && !this.closeSent) {
      this.sendControl(Opcode.Pong, data, undefined, undefined);
    }
    this.emit('ping', data);
  }

  /** @internal Receiver sink. */
  onPong(data: Buffer): void {
    this.emit('pong', data);
  }

  /** Nothing more will be parsed: keep the socket flowing so the peer's FIN is seen. */
  private readToEnd(): void {
    this.pauseReasons = 0;
    if (this.started) this.socket.resume();
  }

  /** @internal Receiver sink. */
  onClose(code: number, reason: string): void {
    this.closeReceived = true;
    this.readToEnd();
    if (this.closeError === undefined) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    this.stopHeartbeat();
    if (this.readyState === ReadyState.OPEN) this.readyState = ReadyState.CLOSING;
    if (!this.closeSent) {
      this.sendClose(code === 1005 ? undefined : code, '');
    } else {
      this.afterCloseHandshake();
      this.armCloseTimer();
    }
  }

  /** @internal Receiver sink. */
  onError(error: WebSocketError): void {
    this.failConnection(error);
  }

  /** @internal */
  _onSocketError(error: Error): void {
    // After the peer's close frame, a reset or EPIPE is just the peer leaving early.
    if (!this.closeReceived) {
      const wrapped = new SocketError(error);
      this.closeError ??= wrapped;
      this.emitError(wrapped);
    }
    this.socket.destroy();
  }

  /** @internal */
  _onSocketClose(): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.readyState = ReadyState.CLOSED;
    this.stopHeartbeat();
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.receiver.destroy();
    this.deflate?.close();
    this.socket.removeListener('data', socketOnData);
    this._owner?.delete(this);
    this._owner = null;
    const closedError = new ConnectionClosedError('Connection closed before the data was written');
    for (const job of this.queue) job.reject?.(closedError);
    this.queue = NO_FRAMES;
    this.queuedBytes = 0;
    const waiters = this.writeWaiters;
    for (let i = this.writeWaitersHead; i + 1 < waiters.length; i += 2) {
      (waiters[i + 1] as (error: Error) => void)(closedError);
    }
    this.writeWaiters = NO_WAITERS;
    this.writeWaitersHead = 0;
    if (!this.closeReceived && this.closeCode === undefined) this.closeCode = 1006;
    const code = this.closeCode ?? 1006;
    this.closeCode = code;
    this.emit('close', code, this.closeReason);
    this.resolveClosed?.();
  }

  // ---------------------------------------------------------------- heartbeat

  /** @internal Called by the shared heartbeat interval. */
  _heartbeat(): void {
    if (this.readyState !== ReadyState.OPEN) return;
    if (!this.alive) {
      const error = new HeartbeatTimeoutError(this.heartbeatInterval);
      this.closeError ??= error;
      this.emitError(error);
      this.terminate();
      return;
    }
    this.alive = false;
    this.sendControl(Opcode.Ping, EMPTY_BUFFER, undefined, undefined);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatActive) {
      this.heartbeatActive = false;
      heartbeatRemove(this, this.heartbeatInterval);
    }
  }

  // ---------------------------------------------------------------- async iteration

  /** @internal Flow control: reading stops while any reason (iterator, inflater) holds it. */
  pauseReading(reason: number = PAUSE_ITERATOR): void {
    if (this.pauseReasons === 0) this.socket.pause();
    this.pauseReasons |= reason;
  }

  /** @internal */
  resumeReading(reason: number = PAUSE_ITERATOR): void {
    if (this.pauseReasons === 0) return;
    this.pauseReasons &= ~reason;
    if (this.pauseReasons === 0 && this.started && this.readyState !== ReadyState.CLOSED)
      this.socket.resume();
  }

  /** @internal Receiver sink. */
  onBusy(busy: boolean): void {
    if (busy) this.pauseReading(PAUSE_INFLATE);
    else this.resumeReading(PAUSE_INFLATE);
  }

  /**
   * Iterate over incoming messages. The loop ends when the connection closes; it throws
   * `closeError` if the connection failed. Breaking out of the loop closes the connection (1000).
   * When more than `iteratorHighWaterMark` messages wait, reading from the socket pauses.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<MessageData> {
    return new MessageIterator(this);
  }
}

class MessageIterator implements AsyncIterableIterator<MessageData> {
  private readonly ws: WebSocket;
  private readonly queue: MessageData[] = [];
  private waiting: { resolve: (r: IteratorResult<MessageData>) => void; reject: (e: Error) => void } | null =
    null;
  private done = false;
  private paused = false;
  private errorReported = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
    if (ws.readyState === ReadyState.CLOSED) {
      this.done = true;
    } else {
      ws.on('message', this.onMessage);
      ws.on('close', this.onClose);
    }
  }

  private readonly onMessage = (data: MessageData): void => {
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      w.resolve({ value: data, done: false });
      return;
    }
    this.queue.push(data);
    if (!this.paused && this.queue.length >= this.ws.iteratorHighWaterMark) {
      this.paused = true;
      this.ws.pauseReading();
    }
  };

  private readonly onClose = (): void => {
    this.done = true;
    this.detach();
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      const error = this.ws.closeError;
      if (error !== undefined) {
        this.errorReported = true;
        w.reject(error);
      } else {
        w.resolve({ value: undefined, done: true });
      }
    }
  };

  private detach(): void {
    this.ws.removeListener('message', this.onMessage);
    this.ws.removeListener('close', this.onClose);
  }

  next(): Promise<IteratorResult<MessageData>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift()!;
      if (this.paused && this.queue.length <= this.ws.iteratorHighWaterMark >>> 1) {
        this.paused = false;
        this.ws.resumeReading();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      const error = this.ws.closeError;
      if (error !== undefined && !this.errorReported && this.ws.readyState === ReadyState.CLOSED) {
        // Report the failure once, then behave like a finished iterator.
        this.errorReported = true;
        return Promise.reject(error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<MessageData>> {
    this.done = true;
    this.queue.length = 0;
    this.detach();
    if (this.paused) this.ws.resumeReading();
    if (this.ws.readyState === ReadyState.OPEN) this.ws.close(1000).catch(noop);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
