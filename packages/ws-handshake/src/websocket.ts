import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { EMPTY_BUFFER, isValidWireCloseCode, Opcode, ReadyState } from './constants.js';
import {
  closeChannel,
  errorChannel,
  openChannel,
  slowConsumerChannel,
  type CloseMessage,
  type ErrorMessage,
  type OpenMessage,
  type SlowConsumerMessage,
} from './diagnostics.js';
import {
  CloseTimeoutError,
  ConnectionClosedError,
  HeartbeatTimeoutError,
  InvalidArgumentError,
  SlowConsumerError,
  SocketError,
  type WebSocketError,
} from './errors.js';
import { type HeartbeatMember, heartbeatAdd, heartbeatRemove, isHeartbeatPong } from './heartbeat.js';
import { MessageIterator } from './message-iterator.js';
import { type ConnectionConfig, connectionConfig } from './connection-config.js';
import { type ConnectionOptions, DEFAULT_MAX_PAYLOAD } from './options.js';
import { Outbound, type OutboundOwner, type SendData, toBuffer } from './outbound.js';
import type { PerMessageDeflate } from './permessage-deflate.js';
import { PreparedMessage } from './prepared.js';
import { Receiver, type ReceiverSink } from './receiver.js';
import { closePayload } from './sender.js';
import type { TopicRegistry } from './topics.js';
import { prepareStream, remoteAddressOf, type TransportName } from './transport.js';

export type { SendData } from './outbound.js';
// Kept importable from here for code written before it moved.
export { PreparedMessage } from './prepared.js';

/** A received message: `string` for text, `Buffer` for binary. */
export type MessageData = string | Buffer;

/** Events of a {@link WebSocket} (Node `EventEmitter` style). */
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

/** Per-call options of `ws.send()`. */
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
  /** How the connection arrived. @default 'http/1.1' */
  transport?: TransportName;
  /** @internal The server's topic registry (`subscribe`/`publish`). */
  topics?: TopicRegistry | null;
}

const noop = (): void => {};

// Promise executors run synchronously, so one module-level executor can hand the resolving
// functions over without allocating a closure per send.
let capturedResolve: () => void = noop;
let capturedReject: (error: Error) => void = noop;
function capture(resolve: () => void, reject: (error: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

function rejected(error: Error): Promise<void> {
  const p = Promise.reject(error);
  p.catch(noop);
  return p;
}

const kConnection = Symbol('websocket');
const F_CLOSE_SENT = 1;
const F_CLOSE_RECEIVED = 2;
const F_SLOW = 4;
const F_STARTED = 8;
const F_ALIVE = 16;
const F_HEARTBEAT = 32;
const F_LOCAL_CLOSE = 64;

const PAUSE_ITERATOR = 1;
const PAUSE_INFLATE = 2;
const PAUSE_BACKPRESSURE = 4;

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
function slowConsumerTimedOut(ws: WebSocket): void {
  ws._slowConsumer();
}

/**
 * One WebSocket connection, server or client side, over any `stream.Duplex` (a TCP/TLS socket
 * after an HTTP/1.1 Upgrade today). Obtained from `handleUpgrade()`, `WebSocketServer`'s
 * `connection` event, or `connect()`.
 *
 * Promises returned by `send()`, `ping()`, `pong()` resolve once the bytes are handed to the
 * kernel and reject if the connection dies first; they never cause unhandled rejections when
 * ignored, so fire-and-forget sending is safe.
 */
export class WebSocket
  extends EventEmitter<WebSocketEvents>
  implements AsyncIterable<MessageData>, ReceiverSink, OutboundOwner, HeartbeatMember
{
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

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

  private state: ReadyState = ReadyState.OPEN;
  private readonly socket: Duplex;
  private readonly receiver: Receiver;
  private readonly outbound: Outbound;
  /** Settings shared by every connection created with the same options object. */
  private readonly config: ConnectionConfig;
  /** Boolean state packed into one field (see the F_* bits). */
  private flags = F_ALIVE;
  private pauseReasons = 0;
  private closeTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  /** When the outbound queue went over `maxBufferedAmount` (0 when it is not). */
  private overSince = 0;
  private head: Buffer | null;
  /** @internal The server's client set this connection removes itself from on close. */
  _owner: Set<WebSocket> | null = null;
  /** @internal This connection's topics (created on first subscribe). */
  _topics: Set<string> | null = null;
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;

  /** @internal Use `handleUpgrade()`, `WebSocketServer` or `connect()`. */
  constructor(socket: Duplex, head: Buffer | null, setup: ConnectionSetup, options: ConnectionOptions) {
    super();
    this.socket = socket;
    this.head = head !== null && head.length > 0 ? head : null;
    this.isServer = setup.isServer;
    this.url = setup.url;
    this.protocol = setup.protocol;
    this.extensions = setup.extensions;
    this.config = connectionConfig(options, setup);
    this.outbound = new Outbound(socket, this, this.config, setup.deflate, !setup.isServer);
    this.receiver = new Receiver(this, {
      isServer: setup.isServer,
      maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      inflater: setup.deflate,
      // `ws` hands text out as bytes; code ported from it may check Buffer.isBuffer(data). The
      // receiver then skips decoding instead of the text being decoded and encoded again.
      textAsBuffer: options.textAsBuffer === true,
    });
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('error', socketOnError);
    socket.on('end', socketOnEnd);
    socket.on('close', socketOnClose);
    prepareStream(socket);
    // Reading starts on the next turn of the event loop, so listeners attached right after
    // `await handleUpgrade()` / `await connect()` see the first message.
    socket.pause();
    setImmediate(startConnection, this);
    if (openChannel.hasSubscribers) {
      openChannel.publish({
        ws: this,
        side: this.isServer ? 'server' : 'client',
        url: this.url,
        protocol: this.protocol,
        extensions: this.extensions,
        remoteAddress: this.remoteAddress,
        transport: this.config.transport,
      } satisfies OpenMessage);
    }
  }

  private has(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  private set(flag: number): void {
    this.flags |= flag;
  }

  private clear(flag: number): void {
    this.flags &= ~flag;
  }

  /** 1 open, 2 closing, 3 closed (0 is never observed: connections are created open). */
  get readyState(): ReadyState {
    return this.state;
  }

  /** Bytes accepted (by `send()` or by the library itself) but not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.outbound.bufferedAmount;
  }

  /** How the connection arrived: `'http/1.1'` (Upgrade on a socket) or `'h2'` (RFC 8441 stream). */
  get transport(): TransportName {
    return this.config.transport;
  }

  /** Remote IP address, when the transport knows one. */
  get remoteAddress(): string | undefined {
    return remoteAddressOf(this.socket);
  }

  /** @internal */
  get iteratorHighWaterMark(): number {
    return this.config.iteratorHighWaterMark;
  }

  /** @internal */
  _start(): void {
    if (this.has(F_STARTED)) return;
    this.set(F_STARTED);
    if (this.state === ReadyState.CLOSED) return;
    if (this.config.heartbeatInterval > 0 && !this.has(F_CLOSE_SENT)) {
      this.set(F_HEARTBEAT);
      heartbeatAdd(this, this.config.heartbeatInterval);
    }
    const head = this.head;
    this.head = null;
    if (head !== null) this.receiver.push(head);
    this.socket.on('data', socketOnData);
    if (this.pauseReasons === 0) this.socket.resume();
  }

  // ---------------------------------------------------------------- sending

  /** Whether a send may be queued now; otherwise the rejection to return. */
  private refuseSend(): Promise<void> | null {
    if (this.state !== ReadyState.OPEN || this.has(F_CLOSE_SENT)) {
      return rejected(new ConnectionClosedError());
    }
    if (this.outbound.full) {
      // Queueing more while over the limit would break the memory bound: slow consumer now.
      const error = this._slowConsumer();
      return rejected(error);
    }
    return null;
  }

  /**
   * Send a message (or a fragment with `fin: false`). Resolves when written to the socket.
   * Rejects with `ConnectionClosedError` once the closing handshake has started, and with
   * `SlowConsumerError` when more than `maxBufferedAmount` bytes already wait (the connection
   * is then closed as a slow consumer).
   */
  send(data: SendData, options?: SendOptions): Promise<void> {
    const refused = this.refuseSend();
    if (refused !== null) return refused;
    const binary = options?.binary ?? typeof data !== 'string';
    // No `.catch()` here: Outbound marks the promise handled only if it ever rejects it.
    const promise = new Promise<void>(capture);
    this.outbound.message(
      data,
      binary,
      options?.fin ?? true,
      options?.compress !== false,
      capturedResolve,
      capturedReject,
      promise,
    );
    return promise;
  }

  /**
   * Send a message prepared once for many connections. Uses the prebuilt frame when it is valid
   * for this connection (server side, no compression of this message), else `send()`.
   */
  sendPrepared(message: PreparedMessage): Promise<void> {
    const frame = this.outbound.frameOf(message);
    if (frame === null) return this.send(message.data, { binary: message.binary });
    const refused = this.refuseSend();
    if (refused !== null) return refused;
    const promise = new Promise<void>(capture);
    this.outbound.prepared(frame, capturedResolve, capturedReject, promise);
    return promise;
  }

  /**
   * `sendPrepared` without the promise, for a server's own fan-out loop (one message to thousands
   * of connections): no promise and no write callback per recipient, as `broadcast` and
   * `publish` do. Returns false when the message was not queued: the connection is not open or is
   * closing, or it is over `maxBufferedAmount` (it is then closed as a slow consumer).
   */
  queuePrepared(message: PreparedMessage): boolean {
    if (!(message instanceof PreparedMessage))
      throw new InvalidArgumentError('queuePrepared takes a PreparedMessage');
    return this._broadcast(message);
  }

  /**
   * @internal Fire-and-forget variant for broadcast and publish: no promise per recipient.
   * Returns false when the message was not queued (not open, or refused as a slow consumer).
   */
  _broadcast(message: PreparedMessage): boolean {
    if (this.state !== ReadyState.OPEN || this.has(F_CLOSE_SENT)) return false;
    if (this.outbound.full) {
      this._slowConsumer();
      return false;
    }
    this.outbound.broadcast(message);
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
    const refused = this.refuseSend();
    if (refused !== null) return refused;
    const promise = new Promise<void>(capture);
    this.outbound.control(opcode, payload, capturedResolve, capturedReject, promise);
    return promise;
  }

  // ---------------------------------------------------------------- slow consumers

  /** @internal Outbound: the queue went over `maxBufferedAmount`. Stop reading from the peer. */
  _onOverLimit(): void {
    this.overSince = Date.now();
    this.pauseReading(PAUSE_BACKPRESSURE);
    // Once closing, closeTimeout bounds the rest.
    if (this.state === ReadyState.CLOSED || this.has(F_SLOW) || this.has(F_CLOSE_SENT)) return;
    const timeout = this.config.slowConsumerTimeout;
    if (timeout <= 0) this._slowConsumer();
    else if (this.slowTimer === undefined) this.slowTimer = setTimeout(slowConsumerTimedOut, timeout, this);
  }

  /** @internal Outbound: back under the limit. Read again. */
  _onRelieved(): void {
    this.overSince = 0;
    this.clearSlowTimer();
    this.resumeReading(PAUSE_BACKPRESSURE);
  }

  private clearSlowTimer(): void {
    if (this.slowTimer !== undefined) {
      clearTimeout(this.slowTimer);
      this.slowTimer = undefined;
    }
  }

  /**
   * @internal The slow-consumer rule: the queue stayed over `maxBufferedAmount` for
   * `slowConsumerTimeout`, or a send found it over. Close with 1008, or terminate.
   */
  _slowConsumer(): SlowConsumerError {
    const limit = this.config.maxBufferedAmount;
    const error = new SlowConsumerError(limit);
    this.clearSlowTimer();
    // Drained meanwhile (the timer raced the drain notice): nothing to do.
    if (this.has(F_SLOW) || this.state === ReadyState.CLOSED || !this.outbound.full) return error;
    this.set(F_SLOW);
    this.closeError ??= error;
    this.closeCode ??= 1008;
    if (slowConsumerChannel.hasSubscribers) {
      slowConsumerChannel.publish({
        ws: this,
        bufferedAmount: this.outbound.bufferedAmount,
        maxBufferedAmount: limit,
        overLimitMs: this.overSince === 0 ? 0 : Date.now() - this.overSince,
        action: this.config.slowConsumer,
      } satisfies SlowConsumerMessage);
    }
    this.emitError(error);
    if (this.config.slowConsumer === 'terminate') {
      this.terminate();
    } else if (!this.has(F_CLOSE_SENT)) {
      this.sendClose(1008, 'Slow consumer');
      // Nothing more will be queued: read again, so the peer's close frame (if it ever
      // reads ours) or its FIN is seen. closeTimeout bounds the rest.
      this.readToEnd();
    }
    return error;
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
    if (this.state !== ReadyState.CLOSED && !this.has(F_CLOSE_SENT)) this.sendClose(code, reason);
    return closed;
  }

  /** Destroy the socket now, without a closing handshake (the close code will be 1006). */
  terminate(): void {
    if (this.state !== ReadyState.CLOSED && !this.has(F_CLOSE_RECEIVED)) this.set(F_LOCAL_CLOSE);
    // Nothing more is delivered, even frames left in the chunk being parsed.
    this.receiver.destroy();
    this.socket.destroy();
  }

  /** Resolves when the connection is closed. */
  whenClosed(): Promise<void> {
    if (this.state === ReadyState.CLOSED) return Promise.resolve();
    if (this.closedPromise === undefined) {
      this.closedPromise = new Promise<void>((resolve) => {
        this.resolveClosed = resolve;
      });
    }
    return this.closedPromise;
  }

  private sendClose(code: number | undefined, reason: string): void {
    if (!this.has(F_CLOSE_RECEIVED)) this.set(F_LOCAL_CLOSE);
    this.set(F_CLOSE_SENT);
    this.outbound.endFragments();
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING;
    // Close frames are exempt from the limit (one per connection, at most 125 bytes).
    this.outbound.control(Opcode.Close, closePayload(code, reason), undefined, undefined, undefined);
    if (this.has(F_CLOSE_RECEIVED)) this.afterCloseHandshake();
    this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== undefined || this.state === ReadyState.CLOSED) return;
    this.closeTimer = setTimeout(closeTimedOut, this.config.closeTimeout, this);
  }

  /** @internal */
  _onCloseTimeout(): void {
    // With both close frames exchanged only the TCP teardown is late: not a failure.
    if (!(this.has(F_CLOSE_SENT) && this.has(F_CLOSE_RECEIVED))) {
      this.closeError ??= new CloseTimeoutError(this.config.closeTimeout);
    }
    this.socket.destroy();
  }

  /**
   * Both close frames exchanged: the server closes TCP first (RFC 6455 §7.1.1); the client
   * waits for the server's FIN, bounded by the close timer.
   */
  private afterCloseHandshake(): void {
    if (this.isServer) this.outbound.end();
  }

  private failConnection(error: WebSocketError): void {
    this.closeError ??= error;
    this.closeCode ??= error.closeCode ?? 1006;
    this.stopHeartbeat();
    if (!this.has(F_CLOSE_SENT)) {
      this.set(F_CLOSE_SENT);
      if (!this.has(F_CLOSE_RECEIVED)) this.set(F_LOCAL_CLOSE);
      this.outbound.endFragments();
      if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING;
      this.outbound.control(
        Opcode.Close,
        closePayload(error.closeCode ?? 1002, ''),
        undefined,
        undefined,
        undefined,
      );
    }
    // Keep reading (and discarding) until the peer closes, so unread data does not turn our
    // FIN into a RST that could destroy the close frame in flight.
    this.readToEnd();
    this.outbound.end();
    this.armCloseTimer();
    this.emitError(error);
  }

  private emitError(error: WebSocketError): void {
    if (errorChannel.hasSubscribers) errorChannel.publish({ ws: this, error } satisfies ErrorMessage);
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  /** @internal Outbound: the compressor failed or was closed. */
  _onOutboundError(error: WebSocketError | null): void {
    if (this.state === ReadyState.CLOSED) return;
    if (error !== null) {
      this.closeError ??= error;
      this.emitError(error);
    }
    this.terminate();
  }

  // ---------------------------------------------------------------- receiving

  /** @internal */
  _onData(chunk: Buffer): void {
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
    // The automatic pong is accounted like any send: reading stops once it crosses the limit,
    // so a peer flooding pings without reading cannot make us queue pongs without bound.
    if (this.state === ReadyState.OPEN && !this.has(F_CLOSE_SENT) && !this.outbound.full) {
      this.outbound.control(Opcode.Pong, data, undefined, undefined, undefined);
    }
    this.emit('ping', data);
  }

  /** @internal Receiver sink. */
  onPong(data: Buffer): void {
    if (this.has(F_HEARTBEAT) && isHeartbeatPong(this.config.heartbeatInterval, data)) this.set(F_ALIVE);
    this.emit('pong', data);
  }

  /** Nothing more will be parsed: keep the socket flowing so the peer's FIN is seen. */
  private readToEnd(): void {
    this.pauseReasons = 0;
    this.receiver.resume();
    if (this.has(F_STARTED) && this.state !== ReadyState.CLOSED) this.socket.resume();
  }

  /** @internal Receiver sink. */
  onClose(code: number, reason: string): void {
    this.set(F_CLOSE_RECEIVED);
    this.readToEnd();
    if (this.closeError === undefined) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    this.stopHeartbeat();
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING;
    if (!this.has(F_CLOSE_SENT)) {
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
    if (!this.has(F_CLOSE_RECEIVED)) {
      const wrapped = new SocketError(error);
      this.closeError ??= wrapped;
      this.emitError(wrapped);
    }
    this.socket.destroy();
  }

  /** @internal */
  _onSocketClose(): void {
    if (this.state === ReadyState.CLOSED) return;
    this.state = ReadyState.CLOSED;
    this.stopHeartbeat();
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.clearSlowTimer();
    this.receiver.destroy();
    this.socket.removeListener('data', socketOnData);
    this._owner?.delete(this);
    this._owner = null;
    if (this._topics !== null) this.config.topics?.leaveAll(this);
    this.outbound.closed();
    if (!this.has(F_CLOSE_RECEIVED) && this.closeCode === undefined) this.closeCode = 1006;
    const code = this.closeCode ?? 1006;
    this.closeCode = code;
    if (closeChannel.hasSubscribers) {
      closeChannel.publish({
        ws: this,
        code,
        reason: this.closeReason,
        initiator: this.has(F_LOCAL_CLOSE) ? 'local' : 'remote',
        wasClean: this.has(F_CLOSE_SENT) && this.has(F_CLOSE_RECEIVED),
        error: this.closeError,
      } satisfies CloseMessage);
    }
    this.emit('close', code, this.closeReason);
    this.resolveClosed?.();
  }

  // ---------------------------------------------------------------- heartbeat

  /** @internal Called by the shared heartbeat interval with this round's ping payload. */
  _heartbeat(token: Buffer): void {
    if (this.state !== ReadyState.OPEN) return;
    // While we are not reading, the pong may be sitting unread: no verdict, no new ping
    // (over the limit, the slow-consumer rule is in charge).
    if (this.pauseReasons !== 0) return;
    if (!this.has(F_ALIVE)) {
      const error = new HeartbeatTimeoutError(this.config.heartbeatInterval);
      this.closeError ??= error;
      this.emitError(error);
      this.terminate();
      return;
    }
    this.clear(F_ALIVE);
    if (!this.outbound.full) this.outbound.control(Opcode.Ping, token, undefined, undefined, undefined);
  }

  private stopHeartbeat(): void {
    if (this.has(F_HEARTBEAT)) {
      this.clear(F_HEARTBEAT);
      heartbeatRemove(this, this.config.heartbeatInterval);
    }
  }

  // ---------------------------------------------------------------- flow control

  /** @internal Reading stops while any reason (iterator, inflater, outbound limit) holds it. */
  pauseReading(reason: number = PAUSE_ITERATOR): void {
    if (this.pauseReasons === 0) this.socket.pause();
    this.pauseReasons |= reason;
    if (reason === PAUSE_BACKPRESSURE) this.receiver.pause();
  }

  /** @internal */
  resumeReading(reason: number = PAUSE_ITERATOR): void {
    if ((this.pauseReasons & reason) === 0) return;
    this.pauseReasons &= ~reason;
    if (reason === PAUSE_BACKPRESSURE) this.receiver.resume();
    if (this.pauseReasons === 0 && this.has(F_STARTED) && this.state !== ReadyState.CLOSED)
      this.socket.resume();
  }

  /** @internal Receiver sink. */
  onBusy(busy: boolean): void {
    if (busy) this.pauseReading(PAUSE_INFLATE);
    else this.resumeReading(PAUSE_INFLATE);
  }

  // ---------------------------------------------------------------- topics

  /** Subscribe this connection to `topic` (server side). Returns false if already subscribed. */
  subscribe(topic: string): boolean {
    const registry = this.requireRegistry();
    if (this.state !== ReadyState.OPEN) return false;
    return registry.subscribe(this, topic);
  }

  /** Leave `topic`. Returns false if not subscribed. */
  unsubscribe(topic: string): boolean {
    return this.config.topics?.unsubscribe(this, topic) ?? false;
  }

  /** Whether this connection is subscribed to `topic`. */
  isSubscribed(topic: string): boolean {
    return this._topics?.has(topic) ?? false;
  }

  /** The topics this connection is subscribed to. */
  get topics(): string[] {
    return this._topics === null ? [] : [...this._topics];
  }

  /**
   * Publish to every other subscriber of `topic` (this connection need not be subscribed).
   * Returns how many connections it was queued for.
   */
  publish(topic: string, data: SendData, options?: { binary?: boolean }): number {
    return this.requireRegistry().publish(topic, data, options?.binary, this);
  }

  private requireRegistry(): TopicRegistry {
    const registry = this.config.topics;
    if (registry === null) {
      throw new InvalidArgumentError('Topics need a connection accepted by a WebSocketServer');
    }
    return registry;
  }

  // ---------------------------------------------------------------- async iteration

  /**
   * Iterate over incoming messages. The loop ends when the connection closes; it throws
   * `closeError` if the connection failed. Breaking out of the loop closes the connection (1000).
   * When more than `iteratorHighWaterMark` messages wait, reading from the socket pauses.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<MessageData> {
    return new MessageIterator(this);
  }
}
