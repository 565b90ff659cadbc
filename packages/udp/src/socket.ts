import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import {
  BindError,
  ConnectError,
  DatagramTooLargeError,
  InvalidArgumentError,
  SendError,
  SocketClosedError,
  SocketNotBoundError,
  SocketOptionError,
  type UdpError,
  UnsafePayloadError,
} from './errors.js';
import {
  type BindOptions,
  MAX_PAYLOAD_IPV4,
  MAX_PAYLOAD_IPV6,
  type OverflowPolicy,
  SAFE_PAYLOAD_IPV4,
  SAFE_PAYLOAD_IPV6,
  type SocketOptions,
  type UnsafePayloadPolicy,
} from './options.js';
import { BoundedQueue } from './queue.js';

/** What can be sent: bytes, a string (UTF-8), or a list of byte chunks sent as one datagram. */
export type Payload = Uint8Array | string | readonly Uint8Array[];

/** Where a datagram came from. */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  /** Payload size in bytes. */
  size: number;
}

/** The local address of a bound socket. */
export interface SocketAddress {
  address: string;
  family: string;
  port: number;
}

/** One received datagram, as yielded by `for await (const { data, rinfo } of socket)`. */
export interface Datagram {
  data: Buffer;
  rinfo: RemoteInfo;
}

/** Counters of one socket since it was created. */
export interface SocketStats {
  /** Datagrams received. */
  received: number;
  /** Payload bytes received. */
  bytesReceived: number;
  /** Datagrams handed to the kernel successfully. */
  sent: number;
  /** Payload bytes handed to the kernel successfully. */
  bytesSent: number;
  /** Sends the kernel refused. */
  sendErrors: number;
  /** Errors reported on the receive path (e.g. ICMP port unreachable on a connected socket). */
  receiveErrors: number;
  /** Datagrams lost because an async iterator's queue was full. */
  dropped: number;
}

/** Events of {@link UdpSocket}. */
export interface UdpSocketEvents {
  /** A datagram arrived. The buffer is yours; it is not reused. */
  message: [data: Buffer, rinfo: RemoteInfo];
  /** The socket is bound. */
  listening: [address: SocketAddress];
  /** `connect()` completed. */
  connect: [];
  /** The socket closed; async iterators end. */
  close: [];
  /**
   * A socket-level failure after bind (a failed `post()`, a receive error). Only emitted while
   * someone listens for `error`; otherwise it is emitted as `warning`, so a stray ICMP error can
   * never crash the process.
   */
  error: [error: UdpError | Error];
  /** Non-fatal problems: unsafe payload sizes (`unsafePayload: 'warn'`) and unobserved errors. */
  warning: [warning: UdpError | Error];
}

type State = 'unbound' | 'binding' | 'bound' | 'closed';

const MULTICAST_V4 = /^(22[4-9]|23\d)\./;

/** A dgram send completion: the error, or null and the bytes sent. */
export type SendCallback = (err: Error | null, bytes?: number) => void;

/**
 * Package-internal fast send for the request layer: the same checks as `send()` (they throw), but
 * the kernel's verdict goes to `callback` instead of a promise, and the caller reports it back
 * with {@link recordSend} so the counters stay exact. Not exported from the package.
 */
export let sendWithCallback: (
  socket: UdpSocket,
  data: Payload,
  port: number | undefined,
  host: string | undefined,
  callback: SendCallback,
) => void;
/** Counts one completion of a {@link sendWithCallback} send. */
export let recordSend: (socket: UdpSocket, err: Error | null, bytes: number | undefined) => void;

/**
 * A UDP socket with promise-based bind/send/connect/close, typed events and async iteration.
 * It wraps one `dgram.Socket` and adds only checks and counters, so the per-datagram cost stays
 * within a few percent of raw dgram.
 */
export class UdpSocket extends EventEmitter<UdpSocketEvents> implements AsyncIterable<Datagram> {
  readonly type: 'udp4' | 'udp6';

  readonly #raw: dgram.Socket;
  readonly #options: SocketOptions;
  readonly #maxPayload: number;
  readonly #safePayload: number;
  readonly #unsafePolicy: UnsafePayloadPolicy;
  readonly #queueLimit: number;
  readonly #overflow: OverflowPolicy;
  /** Live iterator queues; an array, so the per-datagram loop allocates no Set iterator. */
  #queues: BoundedQueue<Datagram>[] = [];
  /** Rejecters of bind()/connect() calls still in progress, settled by close. */
  readonly #pendingOps = new Set<(err: Error) => void>();
  #state: State = 'unbound';
  #connected = false;
  #warnedUnsafe = false;
  #closing: Promise<void> | undefined;
  #signal: AbortSignal | undefined;

  #received = 0;
  #bytesReceived = 0;
  #sent = 0;
  #bytesSent = 0;
  #sendErrors = 0;
  #receiveErrors = 0;
  #droppedByClosedQueues = 0;

  static {
    sendWithCallback = (socket, data, port, host, callback) => {
      socket.#checkSend(data, port, host);
      socket.#rawSend(data, port, host, callback);
    };
    recordSend = (socket, err, bytes) => {
      if (err) socket.#sendErrors++;
      else {
        socket.#sent++;
        socket.#bytesSent += bytes ?? 0;
      }
    };
  }

  constructor(options: SocketOptions = {}) {
    super();
    const type = options.type ?? 'udp4';
    if (type !== 'udp4' && type !== 'udp6') throw new InvalidArgumentError(`type must be 'udp4' or 'udp6'`);
    this.type = type;
    this.#options = options;
    const protocolMax = type === 'udp4' ? MAX_PAYLOAD_IPV4 : MAX_PAYLOAD_IPV6;
    this.#maxPayload = checkInt('maxPayload', options.maxPayload ?? protocolMax, 0, protocolMax);
    this.#safePayload = checkInt(
      'safePayload',
      options.safePayload ?? (type === 'udp4' ? SAFE_PAYLOAD_IPV4 : SAFE_PAYLOAD_IPV6),
      0,
      protocolMax,
    );
    this.#unsafePolicy = options.unsafePayload ?? 'allow';
    if (!['allow', 'warn', 'reject'].includes(this.#unsafePolicy)) {
      throw new InvalidArgumentError(`unsafePayload must be 'allow', 'warn' or 'reject'`);
    }
    this.#queueLimit = checkInt('queueLimit', options.queueLimit ?? 1024, 1, 2 ** 24);
    this.#overflow = options.overflow ?? 'drop-newest';
    if (this.#overflow !== 'drop-newest' && this.#overflow !== 'drop-oldest') {
      throw new InvalidArgumentError(`overflow must be 'drop-newest' or 'drop-oldest'`);
    }
    this.#raw = dgram.createSocket({
      type,
      reuseAddr: options.reuseAddr ?? false,
      ipv6Only: options.ipv6Only ?? false,
    });
    this.#raw.on('message', this.#onMessage);
    this.#raw.on('error', this.#onRawError);
    this.#raw.on('listening', this.#onListening);
    this.#raw.on('close', this.#onRawClose);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) void this.close();
      else {
        this.#signal = signal;
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  readonly #onAbort = (): void => {
    void this.close();
  };

  /** True once bound (explicitly, or implicitly by the first send). */
  get bound(): boolean {
    return this.#state === 'bound';
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#state === 'closed' || this.#closing !== undefined;
  }

  /** True while connected to a default peer. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The largest payload `send()` accepts. */
  get maxPayload(): number {
    return this.#maxPayload;
  }

  /** A snapshot of the counters. */
  get stats(): SocketStats {
    let dropped = this.#droppedByClosedQueues;
    for (const queue of this.#queues) dropped += queue.dropped;
    return {
      received: this.#received,
      bytesReceived: this.#bytesReceived,
      sent: this.#sent,
      bytesSent: this.#bytesSent,
      sendErrors: this.#sendErrors,
      receiveErrors: this.#receiveErrors,
      dropped,
    };
  }

  /**
   * Binds the socket. `bind()` or `bind(0)` picks a free port. Resolves with the bound address and
   * applies the socket options that need a bound socket (buffers, TTLs, broadcast, multicast).
   * A failed bind closes the socket; create a new one to retry.
   */
  bind(port?: number | BindOptions, address?: string): Promise<SocketAddress> {
    const opts: BindOptions = typeof port === 'object' ? port : { port: port ?? 0, address };
    const bindPort = opts.port ?? 0;
    if (this.closed) return Promise.reject(new SocketClosedError('bind'));
    if (this.#state !== 'unbound')
      return Promise.reject(new InvalidArgumentError('the socket is already bound'));
    if (!Number.isInteger(bindPort) || bindPort < 0 || bindPort > 65535) {
      return Promise.reject(new InvalidArgumentError(`port must be an integer in 0..65535, got ${bindPort}`));
    }
    this.#state = 'binding';
    return new Promise<SocketAddress>((resolve, reject) => {
      const cancel = (err: Error): void => {
        this.#raw.off('listening', onListening);
        this.#raw.off('error', onError);
        reject(err);
      };
      const onError = (err: Error): void => {
        this.#pendingOps.delete(cancel);
        this.#raw.off('listening', onListening);
        this.#state = 'unbound';
        reject(new BindError(bindPort, opts.address, err));
        void this.close();
      };
      const onListening = (): void => {
        this.#pendingOps.delete(cancel);
        this.#raw.off('error', onError);
        try {
          this.#applyBoundOptions();
        } catch (err) {
          reject(err);
          void this.close();
          return;
        }
        resolve(this.address());
      };
      this.#raw.once('error', onError);
      this.#raw.once('listening', onListening);
      // close() during an address lookup would otherwise leave this promise pending forever.
      this.#pendingOps.add(cancel);
      try {
        this.#raw.bind({ port: bindPort, address: opts.address, exclusive: opts.exclusive ?? true });
      } catch (err) {
        this.#pendingOps.delete(cancel);
        this.#raw.off('error', onError);
        this.#raw.off('listening', onListening);
        this.#state = 'unbound';
        reject(new BindError(bindPort, opts.address, err));
      }
    });
  }

  /** Sets a default peer: later sends omit port/host and only that peer's datagrams are received. */
  connect(port: number, host?: string): Promise<void> {
    if (this.closed) return Promise.reject(new SocketClosedError('connect'));
    if (!isPort(port)) return Promise.reject(new InvalidArgumentError(`port must be 1..65535, got ${port}`));
    return new Promise<void>((resolve, reject) => {
      this.#pendingOps.add(reject);
      try {
        this.#raw.connect(port, host, (err?: Error) => {
          this.#pendingOps.delete(reject);
          if (err) reject(new ConnectError(port, host, err));
          else {
            this.#connected = true;
            resolve();
            this.emit('connect');
          }
        });
      } catch (err) {
        this.#pendingOps.delete(reject);
        reject(new ConnectError(port, host, err));
      }
    });
  }

  /** Removes the default peer set by `connect()`. */
  disconnect(): void {
    if (!this.#connected) return;
    this.#raw.disconnect();
    this.#connected = false;
  }

  /** The connected peer's address. */
  remoteAddress(): SocketAddress {
    if (!this.#connected) throw new SocketNotBoundError('read remoteAddress (not connected)');
    return this.#raw.remoteAddress();
  }

  /** The bound local address. */
  address(): SocketAddress {
    if (this.#state !== 'bound') throw new SocketNotBoundError('read address');
    return this.#raw.address();
  }

  /**
   * Sends one datagram and resolves with the number of bytes handed to the kernel. Size and
   * argument checks reject before anything reaches the kernel. On a connected socket, omit
   * `port` and `host`. An unbound socket binds to a free port first, as dgram does.
   */
  send(data: Payload, port?: number, host?: string): Promise<number> {
    let size: number;
    try {
      size = this.#checkSend(data, port, host);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<number>((resolve, reject) => {
      const done = (err: Error | null): void => {
        if (err) {
          this.#sendErrors++;
          reject(new SendError(port, host, err));
        } else {
          this.#sent++;
          this.#bytesSent += size;
          resolve(size);
        }
      };
      this.#rawSend(data, port, host, done);
    });
  }

  /**
   * Fire-and-forget send for hot paths: checks throw synchronously, kernel failures are counted in
   * `stats.sendErrors` and emitted (see the `error` event). Allocates no promise or closure.
   */
  post(data: Payload, port?: number, host?: string): void {
    this.#checkSend(data, port, host);
    // A shared callback, not a closure: dgram silently drops the errors of callback-less sends.
    this.#rawSend(data, port, host, this.#onPostDone);
  }

  /** Closes the socket; pending async iterators end after their queued datagrams. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#state === 'closed') return Promise.resolve();
    this.#closing = new Promise<void>((resolve) => {
      this.#raw.once('close', () => resolve());
      try {
        this.#raw.close();
      } catch {
        // Already closed underneath us (e.g. a failed bind tore the handle down): finish by hand.
        this.#onRawClose();
        resolve();
      }
    });
    return this.#closing;
  }

  /**
   * Iterates received datagrams through a bounded queue (`queueLimit`, `overflow`). Each iterator
   * has its own queue; it starts buffering when created and ends when the socket closes.
   */
  messages(
    options: { queueLimit?: number; overflow?: OverflowPolicy } = {},
  ): AsyncIterableIterator<Datagram> {
    const limit = checkInt('queueLimit', options.queueLimit ?? this.#queueLimit, 1, 2 ** 24);
    const queue: BoundedQueue<Datagram> = new BoundedQueue<Datagram>(
      limit,
      options.overflow ?? this.#overflow,
      () => this.#detach(queue),
    );
    if (this.#state === 'closed') queue.end();
    else this.#queues.push(queue);
    return queue;
  }

  /** Same as `messages()` with the socket's default queue limit and overflow policy. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Datagram> {
    return this.messages();
  }

  /** Enables or disables `SO_BROADCAST`. */
  setBroadcast(flag: boolean): void {
    this.#option('setBroadcast', () => this.#raw.setBroadcast(flag));
  }

  /** Unicast TTL (hop limit), 1–255. */
  setTTL(ttl: number): void {
    checkInt('ttl', ttl, 1, 255);
    this.#option('setTTL', () => this.#raw.setTTL(ttl));
  }

  /** Multicast TTL, 0–255 (1 keeps datagrams on the local network). */
  setMulticastTTL(ttl: number): void {
    checkInt('multicastTTL', ttl, 0, 255);
    this.#option('setMulticastTTL', () => this.#raw.setMulticastTTL(ttl));
  }

  /** Whether our own multicast datagrams are looped back to local listeners. */
  setMulticastLoopback(flag: boolean): void {
    this.#option('setMulticastLoopback', () => this.#raw.setMulticastLoopback(flag));
  }

  /** Outgoing multicast interface: an IPv4 address, or `'::%eth0'` style for IPv6. */
  setMulticastInterface(iface: string): void {
    this.#option('setMulticastInterface', () => this.#raw.setMulticastInterface(iface));
  }

  /** Joins a multicast group, optionally on one interface (e.g. `'127.0.0.1'` for loopback). */
  addMembership(group: string, iface?: string): void {
    checkGroup(group);
    this.#option(`addMembership(${group})`, () => this.#raw.addMembership(group, iface));
  }

  /** Leaves a multicast group. */
  dropMembership(group: string, iface?: string): void {
    checkGroup(group);
    this.#option(`dropMembership(${group})`, () => this.#raw.dropMembership(group, iface));
  }

  /** Joins a source-specific multicast channel (SSM, 232/8 on IPv4). */
  addSourceSpecificMembership(source: string, group: string, iface?: string): void {
    checkGroup(group);
    this.#option(`addSourceSpecificMembership(${source}, ${group})`, () =>
      this.#raw.addSourceSpecificMembership(source, group, iface),
    );
  }

  /** Leaves a source-specific multicast channel. */
  dropSourceSpecificMembership(source: string, group: string, iface?: string): void {
    checkGroup(group);
    this.#option(`dropSourceSpecificMembership(${source}, ${group})`, () =>
      this.#raw.dropSourceSpecificMembership(source, group, iface),
    );
  }

  /** Sets the kernel receive buffer (`SO_RCVBUF`); Linux doubles the value and caps it at `rmem_max`. */
  setRecvBufferSize(size: number): void {
    checkInt('recvBufferSize', size, 1, 2 ** 31 - 1);
    this.#option('setRecvBufferSize', () => this.#raw.setRecvBufferSize(size));
  }

  /** Sets the kernel send buffer (`SO_SNDBUF`). */
  setSendBufferSize(size: number): void {
    checkInt('sendBufferSize', size, 1, 2 ** 31 - 1);
    this.#option('setSendBufferSize', () => this.#raw.setSendBufferSize(size));
  }

  /** Kernel receive buffer size in bytes. */
  getRecvBufferSize(): number {
    return this.#option('getRecvBufferSize', () => this.#raw.getRecvBufferSize());
  }

  /** Kernel send buffer size in bytes. */
  getSendBufferSize(): number {
    return this.#option('getSendBufferSize', () => this.#raw.getSendBufferSize());
  }

  /** Datagrams queued in the kernel send queue (as reported by libuv). */
  getSendQueueCount(): number {
    return this.#raw.getSendQueueCount();
  }

  /** Keeps the event loop alive while the socket is open (the default). */
  ref(): this {
    this.#raw.ref();
    return this;
  }

  /** Lets the process exit while the socket is still open. */
  unref(): this {
    this.#raw.unref();
    return this;
  }

  #checkSend(data: Payload, port: number | undefined, host: string | undefined): number {
    if (this.#state === 'closed' || this.#closing !== undefined) throw new SocketClosedError('send');
    let size: number;
    if (typeof data === 'string') size = Buffer.byteLength(data);
    else if (ArrayBuffer.isView(data)) size = data.byteLength;
    else if (Array.isArray(data)) {
      size = 0;
      for (const chunk of data as readonly Uint8Array[]) {
        if (!ArrayBuffer.isView(chunk)) throw new InvalidArgumentError('every chunk must be a Uint8Array');
        size += chunk.byteLength;
      }
    } else throw new InvalidArgumentError('data must be a Uint8Array, a string or an array of Uint8Array');
    if (this.#connected) {
      if (port !== undefined || host !== undefined) {
        throw new InvalidArgumentError('the socket is connected: omit port and host');
      }
    } else if (!isPort(port)) {
      throw new InvalidArgumentError(`port must be an integer in 1..65535, got ${String(port)}`);
    }
    if (size > this.#maxPayload || (this.type === 'udp6' && size > MAX_PAYLOAD_IPV4 && isMappedV4(host))) {
      const limit = this.type === 'udp6' && isMappedV4(host) ? MAX_PAYLOAD_IPV4 : this.#maxPayload;
      throw new DatagramTooLargeError(
        size,
        Math.min(limit, this.#maxPayload),
        limit === MAX_PAYLOAD_IPV4 ? 'IPv4' : 'IPv6',
      );
    }
    if (size > this.#safePayload && this.#unsafePolicy !== 'allow') {
      const problem = new UnsafePayloadError(size, this.#safePayload);
      if (this.#unsafePolicy === 'reject') throw problem;
      if (!this.#warnedUnsafe) {
        this.#warnedUnsafe = true;
        this.emit('warning', problem);
      }
    }
    return size;
  }

  #rawSend(
    data: Payload,
    port: number | undefined,
    host: string | undefined,
    callback: (err: Error | null, bytes?: number) => void,
  ): void {
    // dgram's types do not accept readonly arrays; the runtime does.
    const msg = data as string | Uint8Array;
    try {
      if (this.#connected) this.#raw.send(msg, callback);
      else this.#raw.send(msg, port, host, callback);
    } catch (err) {
      // dgram throws synchronously for a socket closed underneath us or a bad address.
      process.nextTick(callback, err instanceof Error ? err : new Error(String(err)));
    }
  }

  readonly #onPostDone = (err: Error | null, bytes?: number): void => {
    if (err) {
      this.#sendErrors++;
      this.#report(new SendError(undefined, undefined, err));
    } else {
      this.#sent++;
      this.#bytesSent += bytes ?? 0;
    }
  };

  readonly #onMessage = (data: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.#received++;
    this.#bytesReceived += data.length;
    const queues = this.#queues;
    if (queues.length !== 0) {
      const item: Datagram = { data, rinfo: rinfo as RemoteInfo };
      for (let i = 0; i < queues.length; i++) queues[i]!.push(item);
    }
    this.emit('message', data, rinfo as RemoteInfo);
  };

  readonly #onRawError = (err: Error): void => {
    // Bind failures are reported through bind()'s promise.
    if (this.#state === 'binding') return;
    this.#receiveErrors++;
    this.#report(err);
  };

  readonly #onListening = (): void => {
    if (this.#state === 'unbound') {
      // Implicit bind by a first send(): apply the bound-socket options before dgram flushes the
      // queued datagrams (its flush listener was registered after this one).
      this.#state = 'bound';
      try {
        this.#applyBoundOptions();
      } catch (err) {
        this.#report(err as Error);
      }
    } else if (this.#state !== 'closed') this.#state = 'bound';
    if (this.listenerCount('listening') > 0) this.emit('listening', this.#raw.address());
  };

  readonly #onRawClose = (): void => {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#connected = false;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const cancel of this.#pendingOps) cancel(new SocketClosedError('complete bind/connect'));
    this.#pendingOps.clear();
    const queues = this.#queues;
    this.#queues = [];
    for (const queue of queues) {
      this.#droppedByClosedQueues += queue.dropped;
      queue.end();
    }
    this.emit('close');
  };

  #report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.emit('warning', err);
  }

  #detach(queue: BoundedQueue<Datagram>): void {
    const at = this.#queues.indexOf(queue);
    if (at === -1) return;
    // A new array: #onMessage may be iterating the old one (a consumer's return() runs inside push).
    this.#queues = this.#queues.filter((q) => q !== queue);
    this.#droppedByClosedQueues += queue.dropped;
  }

  #applyBoundOptions(): void {
    const o = this.#options;
    if (o.recvBufferSize !== undefined) this.setRecvBufferSize(o.recvBufferSize);
    if (o.sendBufferSize !== undefined) this.setSendBufferSize(o.sendBufferSize);
    if (o.broadcast !== undefined) this.setBroadcast(o.broadcast);
    if (o.ttl !== undefined) this.setTTL(o.ttl);
    if (o.multicastTTL !== undefined) this.setMulticastTTL(o.multicastTTL);
    if (o.multicastLoopback !== undefined) this.setMulticastLoopback(o.multicastLoopback);
    if (o.multicastInterface !== undefined) this.setMulticastInterface(o.multicastInterface);
  }

  #option<T>(operation: string, apply: () => T): T {
    if (this.#state === 'closed' || this.#closing !== undefined) throw new SocketClosedError(operation);
    if (this.#state !== 'bound') throw new SocketNotBoundError(operation);
    try {
      return apply();
    } catch (err) {
      throw new SocketOptionError(operation, err);
    }
  }
}

/** Creates a {@link UdpSocket}. Call `await socket.bind()` to receive. */
export function createSocket(options: SocketOptions | 'udp4' | 'udp6' = {}): UdpSocket {
  return new UdpSocket(typeof options === 'string' ? { type: options } : options);
}

function isPort(port: unknown): port is number {
  return typeof port === 'number' && (port | 0) === port && port > 0 && port < 65536;
}

function isMappedV4(host: string | undefined): boolean {
  return host !== undefined && host.length > 7 && host.charCodeAt(0) === 58 && /^::ffff:[\d.]+$/i.test(host);
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function checkGroup(group: string): void {
  const family = isIP(group);
  const ok = family === 4 ? MULTICAST_V4.test(group) : family === 6 && /^ff/i.test(group);
  if (!ok) throw new InvalidArgumentError(`${group} is not a multicast group address`);
}
