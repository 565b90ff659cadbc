import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { connect } from './client.js';
import type { Codec } from './codec.js';
import type { Connection } from './connection.js';
import {
  ConnectionClosedError,
  ConnectTimeoutError,
  InvalidOptionError,
  IteratorActiveError,
  NotConnectedError,
  PendingBytesExceededError,
  QueueFullError,
  ReconnectFailedError,
} from './errors.js';
import {
  type ConnectOptions,
  checkInt,
  checkNumber,
  MAX_TIMER,
  type ReconnectOptions,
  resolveConnectionOptions,
} from './options.js';

/**
 * `connecting` (an attempt is in flight) → `open` → `waiting` (backoff before the next attempt)
 * → `connecting` … → `closed` (after `close()` or when giving up).
 */
export type ReconnectState = 'connecting' | 'open' | 'waiting' | 'closed';

/** Details of a scheduled retry. */
export interface RetryInfo {
  /** Consecutive failures so far: 1 after the first failed attempt, 0 after a stable connection dropped. */
  attempt: number;
  /** Milliseconds until the next attempt, jitter included. */
  delay: number;
  /** Why the previous attempt or connection failed, if it did. */
  error: Error | undefined;
}

/** Events of a `ReconnectingClient`. */
export type ReconnectEvents<TDecoded, TEncodable> = {
  /** Every state transition. */
  state: [state: ReconnectState, previous: ReconnectState];
  /** Connected (again). The offline queue is being written first (see `send`). */
  open: [connection: Connection<TDecoded, TEncodable>];
  /** A message from the current connection. */
  message: [message: TDecoded];
  /** An open connection was lost. */
  disconnect: [error: Error | undefined];
  /** The next attempt is scheduled. */
  reconnecting: [info: RetryInfo];
  /** A failed attempt or a connection error. Emitted only if listened; the client keeps retrying. */
  error: [error: Error];
  /** Final: `close()` was called (no error) or the client gave up (`ERR_RECONNECT_FAILED`). */
  close: [error: Error | undefined];
};

interface Queued {
  bytes: readonly Uint8Array[];
  size: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

const noop = (): void => {};
const EMPTY = Buffer.alloc(0);

/**
 * A client that stays connected: it reconnects with exponential backoff and jitter, reports every
 * state change, and (optionally) queues messages sent while disconnected, within fixed bounds.
 *
 * @example
 * const client = new ReconnectingClient({ port: 8124, codec: lines() });
 * client.on('state', (s) => console.log('state', s));
 * await client.send('hello'); // queued until connected
 * for await (const line of client) console.log(line);
 */
export class ReconnectingClient<TDecoded = unknown, TEncodable = unknown>
  extends EventEmitter<ReconnectEvents<TDecoded, TEncodable>>
  implements AsyncIterable<TDecoded>
{
  readonly #options: ReconnectOptions<TDecoded, TEncodable>;
  readonly #initialDelay: number;
  readonly #maxDelay: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #maxAttempts: number;
  readonly #stableAfter: number;
  readonly #maxQueuedMessages: number;
  readonly #maxQueuedBytes: number;
  readonly #maxPendingBytes: number;
  readonly #queueEnabled: boolean;
  /** Encodes messages for the offline queue (encoding is stateless in the bundled codecs). */
  readonly #encoder: Codec<TDecoded, TEncodable>;

  #state: ReconnectState = 'connecting';
  #connection: Connection<TDecoded, TEncodable> | undefined;
  #failures = 0;
  #openedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #queue: Queued[] = [];
  #queuedBytes = 0;
  /** The queue is waiting for the live connection's outbound bytes to be flushed. */
  #waitingForRoom = false;
  #closing: Promise<void> | undefined;

  // Messages for `for await`, across connections.
  #inbox: TDecoded[] = [];
  #waiter: ((result: IteratorResult<TDecoded, undefined>) => void) | undefined;
  #iterating = false;

  constructor(options: ReconnectOptions<TDecoded, TEncodable>) {
    super();
    this.#maxPendingBytes = resolveConnectionOptions(options, 0).maxPendingBytes;
    // Fail now rather than retrying forever with options connect() would always reject.
    if (options.path === undefined) checkInt('port', options.port, 0, 65_535);
    else if (typeof options.path !== 'string') throw new InvalidOptionError('path', 'expected a string');
    this.#options = { ...options };
    this.#initialDelay = checkInt('initialDelay', options.initialDelay ?? 100, 0, MAX_TIMER);
    this.#maxDelay = checkInt('maxDelay', options.maxDelay ?? 30_000, 0, MAX_TIMER);
    this.#factor = checkNumber('factor', options.factor ?? 2, 1, 1000);
    this.#jitter = checkNumber('jitter', options.jitter ?? 0.5, 0, 1);
    const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
    this.#maxAttempts =
      maxAttempts === Number.POSITIVE_INFINITY ? maxAttempts : checkInt('maxAttempts', maxAttempts, 1);
    this.#stableAfter = checkInt('stableAfter', options.stableAfter ?? 5_000, 0, MAX_TIMER);
    const queue = options.offlineQueue ?? {};
    this.#queueEnabled = queue !== false;
    this.#maxQueuedMessages =
      queue === false ? 0 : checkInt('offlineQueue.maxMessages', queue.maxMessages ?? 1024, 1);
    this.#maxQueuedBytes =
      queue === false ? 0 : checkInt('offlineQueue.maxBytes', queue.maxBytes ?? 1024 * 1024, 1);
    this.#encoder = options.codec();
    // Start on the next tick so listeners attached right after construction see the first events.
    process.nextTick(() => this.#attempt());
  }

  get state(): ReconnectState {
    return this.#state;
  }

  /** The live connection while `open`. */
  get connection(): Connection<TDecoded, TEncodable> | undefined {
    return this.#connection;
  }

  /** Messages waiting in the offline queue. */
  get queuedMessages(): number {
    return this.#queue.length;
  }

  /** Consecutive failed attempts. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Send now if connected and nothing is queued (same semantics as `Connection.send`); otherwise
   * queue it, resolving once the message was handed whole to a connection. Rejects with
   * `ERR_QUEUE_FULL`, `ERR_PENDING_BYTES_EXCEEDED` (the message alone exceeds `maxPendingBytes`),
   * `ERR_NOT_CONNECTED` (queue disabled), the codec's encode error, or `ERR_CONNECTION_CLOSED` /
   * `ERR_RECONNECT_FAILED` for queued messages dropped by `close()` or by giving up.
   */
  send(message: TEncodable): Promise<void> {
    const connection = this.#connection;
    if (connection !== undefined && connection.state === 'open' && this.#queue.length === 0) {
      return connection.send(message);
    }
    let promise: Promise<void>;
    try {
      promise = this.#enqueue(message);
    } catch (error) {
      promise = Promise.reject(error);
      promise.catch(noop);
    }
    return promise;
  }

  /** Resolves with the connection once open (at once if open); rejects after `timeout` ms or on close. */
  opened(timeout = 30_000): Promise<Connection<TDecoded, TEncodable>> {
    const connection = this.#connection;
    if (this.#state === 'open' && connection !== undefined) return Promise.resolve(connection);
    if (this.#state === 'closed') return Promise.reject(new ConnectionClosedError('client is closed'));
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('open', onOpen);
        this.off('close', onClose);
      };
      const onOpen = (conn: Connection<TDecoded, TEncodable>): void => {
        cleanup();
        resolve(conn);
      };
      const onClose = (error: Error | undefined): void => {
        cleanup();
        reject(error ?? new ConnectionClosedError('client is closed'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ConnectTimeoutError(timeout));
      }, timeout);
      this.on('open', onOpen);
      this.on('close', onClose);
    });
  }

  /** Stop reconnecting, end the current connection gracefully, drop the offline queue. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const connection = this.#connection;
    this.#closing = (async () => {
      this.#shutdown(undefined);
      if (connection !== undefined) await connection.end();
    })();
    return this.#closing;
  }

  #enqueue(message: TEncodable): Promise<void> {
    if (this.#state === 'closed') throw new ConnectionClosedError('client is closed');
    if (!this.#queueEnabled) throw new NotConnectedError();
    if (this.#queue.length >= this.#maxQueuedMessages) {
      throw new QueueFullError(`offline queue holds maxMessages (${this.#maxQueuedMessages}) messages`);
    }
    const encoded = this.#encoder.encode(message);
    const bytes = encoded instanceof Uint8Array ? [encoded] : encoded;
    let size = 0;
    for (const part of bytes) size += part.byteLength;
    // Such a message could only ever be written to an idle connection, and would hold the whole
    // queue behind it until then.
    if (size > this.#maxPendingBytes) throw new PendingBytesExceededError(0, this.#maxPendingBytes);
    if (this.#queuedBytes + size > this.#maxQueuedBytes) {
      throw new QueueFullError(`offline queue would exceed maxBytes (${this.#maxQueuedBytes})`);
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes, size, resolve, reject });
    });
    promise.catch(noop); // a dropped message the caller did not await is not an unhandled rejection
    this.#queuedBytes += size;
    return promise;
  }

  /**
   * Hand queued messages to the live connection, each whole and in order. At the first one that
   * does not fit (`maxPendingBytes`), stop and retry once the connection's outbound bytes reached
   * the kernel; if the connection is gone, the rest waits for the next one.
   */
  #flushQueue(): void {
    const connection = this.#connection;
    const queue = this.#queue;
    while (queue.length > 0) {
      if (connection === undefined || connection.state !== 'open') return;
      const item = queue[0]!;
      try {
        connection.writeRaw(item.bytes);
      } catch (error) {
        if (error instanceof PendingBytesExceededError) this.#waitForRoom(connection);
        return;
      }
      queue.shift();
      this.#queuedBytes -= item.size;
      item.resolve();
    }
  }

  #waitForRoom(connection: Connection<TDecoded, TEncodable>): void {
    if (this.#waitingForRoom) return;
    this.#waitingForRoom = true;
    // The connection hands its batch to the socket on this tick's flush (queued before us); an
    // empty write after that calls back once everything before it has left the socket's buffer.
    process.nextTick(() => {
      const socket = connection.socket;
      if (this.#connection !== connection || connection.state !== 'open' || !socket.writable) {
        this.#waitingForRoom = false;
        return;
      }
      socket.write(EMPTY, () => {
        this.#waitingForRoom = false;
        if (this.#connection === connection) this.#flushQueue();
      });
    });
  }

  /** Reject and forget every queued message. */
  #dropQueue(error: Error): void {
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const item of queue) item.reject(error);
  }

  #setState(state: ReconnectState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', state, previous);
  }

  #attempt(): void {
    if (this.#state === 'closed') return;
    this.#timer = undefined;
    this.#setState('connecting');
    const abort = new AbortController();
    this.#abort = abort;
    const {
      initialDelay,
      maxDelay,
      factor,
      jitter,
      maxAttempts,
      stableAfter,
      offlineQueue,
      shouldReconnect,
      ...rest
    } = this.#options;
    const connectOptions: ConnectOptions<TDecoded, TEncodable> = { ...rest, signal: abort.signal };
    connect(connectOptions).then(
      (connection) => this.#onConnected(connection),
      (error: Error) => {
        if (abort.signal.aborted || this.#state === 'closed') return;
        this.#emitError(error);
        this.#failures++;
        this.#scheduleRetry(error);
      },
    );
  }

  #onConnected(connection: Connection<TDecoded, TEncodable>): void {
    if (this.#state === 'closed') {
      connection.destroy();
      return;
    }
    this.#abort = undefined;
    this.#connection = connection;
    this.#openedAt = Date.now();
    connection.on('message', (message) => this.#onMessage(message));
    connection.on('error', (error) => this.#emitError(error));
    connection.on('close', (error) => this.#onDisconnect(connection, error));
    // The queue goes out first and in order; sends made while it is not empty join its tail.
    this.#waitingForRoom = false;
    this.#flushQueue();
    this.#setState('open');
    this.emit('open', connection);
  }

  #onDisconnect(connection: Connection<TDecoded, TEncodable>, error: Error | undefined): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    if (this.#state === 'closed') return;
    this.emit('disconnect', error);
    if (Date.now() - this.#openedAt >= this.#stableAfter) this.#failures = 0;
    else this.#failures++;
    this.#scheduleRetry(error);
  }

  #scheduleRetry(error: Error | undefined): void {
    if (this.#state === 'closed') return;
    const attempt = this.#failures;
    const allowed = this.#options.shouldReconnect?.(error, attempt) ?? true;
    if (!allowed || attempt >= this.#maxAttempts) {
      this.#shutdown(new ReconnectFailedError(attempt, error));
      return;
    }
    const base = Math.min(this.#maxDelay, this.#initialDelay * this.#factor ** Math.max(0, attempt - 1));
    const delay = Math.round(base * (1 - this.#jitter * Math.random()));
    this.#setState('waiting');
    this.emit('reconnecting', { attempt, delay, error });
    this.#timer = setTimeout(() => this.#attempt(), delay);
  }

  #shutdown(error: Error | undefined): void {
    if (this.#state === 'closed') return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
    this.#dropQueue(error ?? new ConnectionClosedError('client closed before the message was sent'));
    this.#setState('closed');
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
    this.emit('close', error);
  }

  #emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  #onMessage(message: TDecoded): void {
    this.emit('message', message);
    if (!this.#iterating) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ value: message, done: false });
      return;
    }
    this.#inbox.push(message);
    // Push back on the server while the loop body is slower than the network.
    if (this.#inbox.length >= 1024) this.#connection?.socket.pause();
  }

  /**
   * Messages from every connection in turn; ends after `close()` or when the client gives up.
   * Breaking out of the loop does not close the client.
   */
  [Symbol.asyncIterator](): AsyncIterator<TDecoded, undefined> {
    if (this.#iterating) throw new IteratorActiveError();
    this.#iterating = true;
    const stop = (): void => {
      this.#iterating = false;
      this.#inbox = [];
      this.#connection?.socket.resume();
    };
    return {
      next: () => {
        if (this.#inbox.length > 0) {
          const value = this.#inbox.shift()!;
          if (this.#inbox.length < 512) this.#connection?.socket.resume();
          return Promise.resolve({ value, done: false });
        }
        if (this.#state === 'closed' || !this.#iterating) {
          stop();
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => {
          this.#waiter = resolve;
        });
      },
      return: () => {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        stop();
        waiter?.({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
