import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import {
  AbortError,
  HandlerTimeoutError,
  InvalidArgumentError,
  RemoteError,
  SendError,
  SocketClosedError,
  TimeoutError,
  TooManyPendingError,
} from './errors.js';
import type { BackoffOptions, RequesterOptions, RequestOptions, ServeOptions } from './options.js';
import { ABANDONED, ANSWERED, RecentIds } from './recent-ids.js';
import { ReplyCache, RUNNING } from './reply-cache.js';
import { decodeFrame, encodeFrame, looksLikeFrame } from './request-header.js';
import {
  createSocket,
  type Payload,
  type RemoteInfo,
  recordSend,
  type SendCallback,
  sendWithCallback,
  type UdpSocket,
} from './socket.js';
import { TimerQueue } from './timer-queue.js';

/** A reply to a request. */
export interface Reply {
  /** The reply payload (header stripped). */
  data: Buffer;
  /** Who answered. */
  rinfo: RemoteInfo;
  /** How many times the request was sent before this reply arrived. */
  attempts: number;
  /** Milliseconds from the first send to the reply. */
  rtt: number;
}

/** Counters of a {@link Requester}. */
export interface RequesterStats {
  /** Requests started. */
  requests: number;
  /** Retransmissions (attempts after the first). */
  retransmits: number;
  /** Requests resolved with a reply. */
  replies: number;
  /** Extra replies for a request that was already answered (dropped). */
  duplicates: number;
  /** Replies that arrived after their request timed out or was aborted (dropped). */
  late: number;
  /** Replies with an id we never used or from the wrong peer (dropped). */
  unknown: number;
  /** Datagrams with our magic but an unreadable header (dropped). */
  malformed: number;
  /** Requests that ended in `ERR_UDP_TIMEOUT`. */
  timeouts: number;
  /** Requests answered with an error reply (`ERR_UDP_REMOTE`). */
  remoteErrors: number;
}

interface Pending {
  id: number;
  frame: Buffer;
  port: number | undefined;
  host: string | undefined;
  expectPort: number | undefined;
  expectAddress: string | undefined;
  attempts: number;
  maxAttempts: number;
  started: number;
  deadline: number;
  wait: number;
  factor: number;
  maxWait: number;
  jitter: number;
  /** A deadline for this request sits in the timer queue. */
  scheduled: boolean;
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Send completion, shared by every attempt of this request. */
  onSent: SendCallback;
}

const DEFAULT_TIMEOUT = 5000;
const MAX_DELAY = 2 ** 31 - 1;
const DEFAULT_RETRIES = 4;
const DEFAULT_BACKOFF: Required<BackoffOptions> = { initial: 200, factor: 2, max: 2000, jitter: 0.2 };

/**
 * Sends requests over one socket and matches replies by id. Attach one requester per socket; it
 * listens to the socket's `message` event and ignores datagrams that are not replies.
 */
export class Requester {
  readonly socket: UdpSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #recent: RecentIds;
  readonly #maxPending: number;
  readonly #defaults: RequestOptions;
  readonly #hasDefaults: boolean;
  #lastHost = '';
  #lastExpect: string | undefined;
  #nextId = (Math.random() * 0x100000000) >>> 0;
  readonly #timers = new TimerQueue<Pending>(
    (pending) => this.#onTimer(pending),
    (pending) => this.#isLive(pending),
  );
  #closed = false;
  readonly #stats: RequesterStats = {
    requests: 0,
    retransmits: 0,
    replies: 0,
    duplicates: 0,
    late: 0,
    unknown: 0,
    malformed: 0,
    timeouts: 0,
    remoteErrors: 0,
  };

  constructor(socket: UdpSocket, options: RequesterOptions = {}) {
    this.socket = socket;
    this.#maxPending = positiveInt('maxPending', options.maxPending ?? 1024);
    this.#recent = new RecentIds(positiveInt('recentIds', options.recentIds ?? 1024));
    this.#defaults = options.defaults ?? {};
    this.#hasDefaults = Object.keys(this.#defaults).length > 0;
    socket.on('message', this.#onMessage);
    socket.on('close', this.#onClose);
  }

  /** A snapshot of the counters. */
  get stats(): RequesterStats {
    return { ...this.#stats };
  }

  /** Requests currently waiting for a reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends `data` as a request and resolves with the first matching reply. Retransmits with
   * exponential backoff until a reply arrives, `retries` are used up or `timeout` passes
   * (`ERR_UDP_TIMEOUT`). Duplicate and late replies are dropped and counted.
   */
  request(data: Payload, options: RequestOptions = NO_OPTIONS): Promise<Reply> {
    // Merging costs an object per request; skip it when there is nothing to merge.
    const o =
      options === NO_OPTIONS
        ? this.#defaults
        : this.#hasDefaults
          ? { ...this.#defaults, ...options }
          : options;
    if (this.#closed || this.socket.closed) return Promise.reject(new SocketClosedError('request'));
    if (o.signal?.aborted) return Promise.reject(new AbortError(o.signal.reason));
    if (this.#pending.size >= this.#maxPending)
      return Promise.reject(new TooManyPendingError(this.#maxPending));
    let pending: Pending;
    try {
      pending = this.#prepare(data, o);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Reply>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
      pending.onSent = (err) => {
        recordSend(this.socket, err, pending.frame.byteLength);
        if (err && this.#pending.get(pending.id & KEY_MASK) === pending) {
          this.#finish(pending, 'abandoned', new SendError(pending.port, pending.host, err));
        }
      };
      this.#pending.set(pending.id & KEY_MASK, pending);
      this.#stats.requests++;
      const signal = o.signal;
      if (signal !== undefined) {
        pending.signal = signal;
        pending.onAbort = () => this.#finish(pending, 'abandoned', new AbortError(signal.reason));
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.#transmit(pending, pending.started);
    });
  }

  /** Detaches from the socket and rejects every pending request with `ERR_UDP_SOCKET_CLOSED`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.off('message', this.#onMessage);
    this.socket.off('close', this.#onClose);
    for (const pending of [...this.#pending.values()]) {
      this.#finish(pending, 'abandoned', new SocketClosedError('wait for a reply'));
    }
  }

  #prepare(data: Payload, o: RequestOptions): Pending {
    const timeout = o.timeout ?? DEFAULT_TIMEOUT;
    // setTimeout silently turns delays above 2^31-1 ms into 1 ms.
    if (!(timeout > 0) || timeout > MAX_DELAY)
      throw new InvalidArgumentError(`timeout must be 1..${MAX_DELAY} ms`);
    const retries = o.retries ?? DEFAULT_RETRIES;
    if (!Number.isInteger(retries) || retries < 0 || retries > 1000) {
      throw new InvalidArgumentError('retries must be an integer in 0..1000');
    }
    const b =
      o.backoff === undefined
        ? DEFAULT_BACKOFF
        : o.backoff === false
          ? { ...DEFAULT_BACKOFF, factor: 1, jitter: 0 }
          : { ...DEFAULT_BACKOFF, ...o.backoff };
    if (!(b.initial > 0) || !(b.factor >= 1) || !(b.max >= b.initial) || !(b.jitter >= 0 && b.jitter < 1)) {
      throw new InvalidArgumentError(
        'backoff needs initial > 0, factor >= 1, max >= initial, 0 <= jitter < 1',
      );
    }
    const connected = this.socket.connected;
    if (
      !connected &&
      (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
    ) {
      throw new InvalidArgumentError(`port must be an integer in 1..65535, got ${String(o.port)}`);
    }
    const payload: Uint8Array | string = Array.isArray(data)
      ? Buffer.concat(data as readonly Uint8Array[])
      : (data as Uint8Array | string);
    const id = this.#allocateId();
    const frame = encodeFrame('request', id, payload);
    let expectPort = o.port;
    let expectHost = o.host ?? (this.socket.type === 'udp4' ? '127.0.0.1' : '::1');
    if (connected) {
      const remote = this.socket.remoteAddress();
      expectPort = remote.port;
      expectHost = remote.address;
    }
    const now = performance.now();
    return {
      id,
      frame,
      port: connected ? undefined : o.port,
      host: connected ? undefined : o.host,
      expectPort,
      expectAddress: this.#expectedAddress(expectHost),
      attempts: 0,
      maxAttempts: retries + 1,
      started: now,
      deadline: now + timeout,
      wait: b.initial,
      factor: b.factor,
      maxWait: b.max,
      jitter: b.jitter,
      scheduled: false,
      resolve: noop,
      reject: noop,
      signal: undefined,
      onAbort: undefined,
      onSent: noop,
    };
  }

  /** unicastLiteral() memoised for the common case of one destination. */
  #expectedAddress(host: string): string | undefined {
    if (host !== this.#lastHost) {
      this.#lastHost = host;
      this.#lastExpect = unicastLiteral(host);
    }
    return this.#lastExpect;
  }

  #allocateId(): number {
    let id = this.#nextId;
    while (this.#pending.has(id & KEY_MASK) || this.#recent.get(id) !== 0) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    return id;
  }

  /** `now` is the caller's performance.now(): one clock read per attempt instead of three. */
  #transmit(pending: Pending, now: number): void {
    pending.attempts++;
    if (pending.attempts > 1) this.#stats.retransmits++;
    const remaining = pending.deadline - now;
    const spread = pending.jitter === 0 ? 1 : 1 - pending.jitter + 2 * pending.jitter * Math.random();
    // After the last attempt we still wait one backoff interval for its reply, then give up.
    const wait = Math.min(remaining, pending.wait * spread);
    pending.wait = Math.min(pending.wait * pending.factor, pending.maxWait);
    this.#timers.schedule(pending, Math.max(1, wait), now);
    pending.scheduled = true;
    try {
      sendWithCallback(this.socket, pending.frame, pending.port, pending.host, pending.onSent);
    } catch (err) {
      // The socket's own checks (closed, size): fail now, as a rejected send() would have.
      this.#finish(pending, 'abandoned', err as Error);
    }
  }

  readonly #isLive = (pending: Pending): boolean => this.#pending.get(pending.id & KEY_MASK) === pending;

  readonly #onTimer = (pending: Pending): void => {
    pending.scheduled = false;
    const now = performance.now();
    if (pending.attempts < pending.maxAttempts && now < pending.deadline - 1) {
      this.#transmit(pending, now);
      return;
    }
    this.#stats.timeouts++;
    this.#finish(pending, 'abandoned', new TimeoutError(pending.attempts, now - pending.started));
  };

  readonly #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    if (!looksLikeFrame(data)) return;
    const frame = decodeFrame(data);
    if (frame.kind === 'invalid') {
      this.#stats.malformed++;
      return;
    }
    if (frame.kind === 'request') return;
    const found = this.#pending.get(frame.id & KEY_MASK);
    // The map is keyed by the id's low 30 bits (small integers, no heap number per key).
    const pending = found !== undefined && found.id === frame.id ? found : undefined;
    if (pending === undefined) {
      const fate = this.#recent.get(frame.id);
      if (fate === ANSWERED) this.#stats.duplicates++;
      else if (fate === ABANDONED) this.#stats.late++;
      else this.#stats.unknown++;
      return;
    }
    if (
      (pending.expectPort !== undefined && rinfo.port !== pending.expectPort) ||
      (pending.expectAddress !== undefined &&
        rinfo.address !== pending.expectAddress &&
        normalize(rinfo.address) !== pending.expectAddress)
    ) {
      this.#stats.unknown++;
      return;
    }
    if (frame.kind === 'error') {
      this.#stats.remoteErrors++;
      this.#finish(pending, 'answered', new RemoteError(frame.payload.toString('utf8')));
      return;
    }
    this.#stats.replies++;
    const reply: Reply = {
      data: frame.payload,
      rinfo,
      attempts: pending.attempts,
      rtt: performance.now() - pending.started,
    };
    this.#finish(pending, 'answered', reply);
  };

  readonly #onClose = (): void => {
    for (const pending of [...this.#pending.values()]) {
      this.#finish(pending, 'abandoned', new SocketClosedError('wait for a reply'));
    }
  };

  #finish(pending: Pending, fate: 'answered' | 'abandoned', outcome: Reply | Error): void {
    if (this.#pending.get(pending.id & KEY_MASK) !== pending) return;
    this.#pending.delete(pending.id & KEY_MASK);
    // Its deadline stays in the queue and is skipped when due; with nothing pending, drop them all.
    if (this.#pending.size === 0) this.#timers.clear();
    else if (pending.scheduled) this.#timers.cancelled();
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort);
    this.#recent.add(pending.id, fate === 'answered' ? ANSWERED : ABANDONED);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }
}

/** Attaches a {@link Requester} to a socket. */
export function createRequester(socket: UdpSocket, options?: RequesterOptions): Requester {
  return new Requester(socket, options);
}

/**
 * One-shot request: opens a socket on a free port, sends, waits for the reply, closes.
 * For many requests, keep a socket and use {@link createRequester}.
 */
export async function request(data: Payload, options: RequestOptions & { port: number }): Promise<Reply> {
  const host = options.host ?? '127.0.0.1';
  const socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
  try {
    await socket.bind(0);
    return await new Requester(socket).request(data, { ...options, host });
  } finally {
    await socket.close();
  }
}

/** What a handler may return: a reply payload, `undefined` (empty reply) or `null` (no reply at all). */
export type HandlerResult = Uint8Array | string | null | undefined;

/** Answers one request. Throwing (or rejecting) sends an error reply. */
export type RequestHandler = (
  data: Buffer,
  rinfo: RemoteInfo,
  request: { id: number },
) => HandlerResult | Promise<HandlerResult>;

/** Counters of a {@link Responder}. */
export interface ResponderStats {
  /** Requests handed to the handler. */
  handled: number;
  /** Retransmitted requests answered from the reply cache (handler not re-run). */
  cached: number;
  /** Retransmissions that arrived while the handler was still running (dropped; the reply follows). */
  inProgress: number;
  /** Requests dropped because `maxConcurrent` handlers were busy. */
  overloaded: number;
  /** Handlers that threw, rejected or exceeded `handlerTimeout` (answered with an error reply). */
  handlerErrors: number;
  /** Datagrams with our magic but an unreadable header. */
  malformed: number;
  /** Replies that could not be sent (too large, socket closed, kernel error). */
  sendErrors: number;
}

/** Events of {@link Responder}. */
export interface ResponderEvents {
  /** The handler threw or rejected, or its reply could not be sent. */
  handlerError: [error: unknown, rinfo: RemoteInfo];
}

/** A handler that returned a promise: what its outcome needs, allocated only on that path. */
interface AsyncHandler {
  slot: number;
  generation: number;
  id: number;
  rinfo: RemoteInfo;
  /** The handler finished (or timed out); later outcomes are ignored. */
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The server side of request/response. Caches recent replies per (peer, id) so a retransmitted
 * request is answered again without re-running the handler: handlers run at most once per request.
 */
export class Responder extends EventEmitter<ResponderEvents> {
  readonly socket: UdpSocket;
  readonly #handler: RequestHandler;
  readonly #cache: ReplyCache;
  readonly #cacheTtl: number;
  readonly #maxConcurrent: number;
  readonly #exposeErrors: boolean;
  readonly #handlerTimeout: number;
  #running = 0;
  #closed = false;
  readonly #stats: ResponderStats = {
    handled: 0,
    cached: 0,
    inProgress: 0,
    overloaded: 0,
    handlerErrors: 0,
    malformed: 0,
    sendErrors: 0,
  };

  constructor(socket: UdpSocket, handler: RequestHandler, options: ServeOptions = {}) {
    super();
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.socket = socket;
    this.#handler = handler;
    this.#cache = new ReplyCache(positiveInt('cacheSize', options.cacheSize ?? 1024));
    this.#cacheTtl = options.cacheTtl ?? 30_000;
    if (!(this.#cacheTtl >= 0)) throw new InvalidArgumentError('cacheTtl must be >= 0');
    this.#maxConcurrent = positiveInt('maxConcurrent', options.maxConcurrent ?? 256);
    this.#exposeErrors = options.exposeErrors ?? false;
    this.#handlerTimeout = options.handlerTimeout ?? 10_000;
    if (!(this.#handlerTimeout > 0) || this.#handlerTimeout > 2 ** 31 - 1) {
      throw new InvalidArgumentError('handlerTimeout must be 1..2147483647 ms');
    }
    socket.on('message', this.#onMessage);
  }

  /** A snapshot of the counters. */
  get stats(): ResponderStats {
    return { ...this.#stats };
  }

  /** Stops answering (the socket stays open). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.off('message', this.#onMessage);
    this.#cache.clear();
  }

  readonly #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    if (!looksLikeFrame(data)) return;
    const frame = decodeFrame(data);
    if (frame.kind === 'invalid') {
      this.#stats.malformed++;
      return;
    }
    if (frame.kind !== 'request') return;
    const id = frame.id;
    const cache = this.#cache;
    const slot = cache.find(rinfo.address, rinfo.port, id);
    if (slot !== -1) {
      if (cache.state(slot) === RUNNING) {
        this.#stats.inProgress++;
        return;
      }
      if (cache.expires(slot) > performance.now()) {
        const reply = cache.reply(slot);
        if (reply !== null) {
          this.#stats.cached++;
          this.#sendReply(reply, rinfo);
        }
        return;
      }
    }
    if (this.#running >= this.#maxConcurrent) {
      this.#stats.overloaded++;
      return;
    }
    if (slot !== -1) cache.remove(slot);
    const fresh = cache.insert(rinfo.address, rinfo.port, id);
    const generation = cache.generation(fresh);
    this.#stats.handled++;
    this.#running++;
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = this.#handler(frame.payload, rinfo, { id });
    } catch (err) {
      this.#running--;
      this.#complete(fresh, generation, id, rinfo, undefined, err, true);
      return;
    }
    if (isPromiseLike(result)) {
      const job: AsyncHandler = { slot: fresh, generation, id, rinfo, settled: false, timer: undefined };
      job.timer = setTimeout(this.#onHandlerTimeout, this.#handlerTimeout, job);
      job.timer.unref();
      result.then(
        (value) => this.#completeAsync(job, value, undefined, false),
        (err: unknown) => this.#completeAsync(job, undefined, err, true),
      );
    } else {
      this.#running--;
      this.#complete(fresh, generation, id, rinfo, result, undefined, false);
    }
  };

  readonly #onHandlerTimeout = (job: AsyncHandler): void => {
    this.#completeAsync(job, undefined, new HandlerTimeoutError(this.#handlerTimeout), true);
  };

  #completeAsync(job: AsyncHandler, value: HandlerResult, error: unknown, failed: boolean): void {
    // A handler that outlived handlerTimeout was already answered with an error.
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    this.#running--;
    this.#complete(job.slot, job.generation, job.id, job.rinfo, value, error, failed);
  }

  #complete(
    slot: number,
    generation: number,
    id: number,
    rinfo: RemoteInfo,
    value: HandlerResult,
    error: unknown,
    failed: boolean,
  ): void {
    if (this.#closed) return;
    let reply: Buffer | null;
    if (failed) {
      this.#stats.handlerErrors++;
      this.emit('handlerError', error, rinfo);
      reply = encodeFrame('error', id, this.#exposeErrors ? errorText(error) : '');
    } else if (value === null) reply = null;
    else {
      try {
        reply = encodeFrame('reply', id, value ?? EMPTY);
      } catch (err) {
        this.#stats.handlerErrors++;
        this.emit('handlerError', err, rinfo);
        reply = encodeFrame('error', id, this.#exposeErrors ? errorText(err) : '');
      }
      if (reply.byteLength > this.socket.maxPayload) {
        const err = new InvalidArgumentError(`reply of ${reply.byteLength} bytes exceeds maxPayload`);
        this.#stats.handlerErrors++;
        this.emit('handlerError', err, rinfo);
        reply = encodeFrame('error', id, this.#exposeErrors ? err.message : '');
      }
    }
    // An entry evicted while its handler ran is not re-cached; the reply is still sent.
    this.#cache.settle(slot, generation, reply, performance.now() + this.#cacheTtl);
    if (reply !== null) this.#sendReply(reply, rinfo);
  }

  #sendReply(reply: Buffer, rinfo: RemoteInfo): void {
    try {
      this.socket.post(reply, rinfo.port, rinfo.address);
    } catch (err) {
      this.#stats.sendErrors++;
      this.emit('handlerError', err, rinfo);
    }
  }
}

/** Answers requests arriving on `socket` with `handler`. Returns the {@link Responder} (call `close()` to stop). */
export function serve(socket: UdpSocket, handler: RequestHandler, options?: ServeOptions): Responder {
  return new Responder(socket, handler, options);
}

const EMPTY = new Uint8Array(0);
const NO_OPTIONS: RequestOptions = Object.freeze({});
/** Pending requests are keyed by the low 30 bits of their id: V8 small integers on every platform. */
const KEY_MASK = 0x3fffffff;

function noop(): void {}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  return value;
}

function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 512 ? text.slice(0, 512) : text;
}

function normalize(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The canonical address replies must come from, or undefined when any sender is acceptable. */
function unicastLiteral(host: string): string | undefined {
  const family = isIP(host);
  if (family === 4) {
    const first = Number(host.slice(0, host.indexOf('.')));
    return first >= 224 || host.endsWith('.255') ? undefined : host;
  }
  if (family === 6) {
    if (/^ff/i.test(host)) return undefined;
    if (host.includes('.')) return normalize(host);
    try {
      return normalize(new URL(`udp://[${host}]`).hostname.slice(1, -1));
    } catch {
      return undefined;
    }
  }
  return undefined;
}
