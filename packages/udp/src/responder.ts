import { EventEmitter } from 'node:events';
import { HandlerTimeoutError, InvalidArgumentError } from './errors.js';
import type { ServeOptions } from './options.js';
import { ReplyCache, RUNNING } from './reply-cache.js';
import { decodeFrame, encodeFrame, looksLikeFrame } from './request-header.js';
import type { RemoteInfo, UdpSocket } from './socket.js';
import { isLoopback, SourceLimiter } from './source-limiter.js';

/** What a handler may return: a reply payload, `undefined` (empty reply) or `null` (no reply at all). */
export type HandlerResult = Uint8Array | string | null | undefined;

/** What a handler learns about its request besides the payload. */
export interface RequestInfo {
  /** The request id (chosen by the requester). */
  readonly id: number;
  /**
   * Aborted (reason: `ERR_UDP_HANDLER_TIMEOUT`) when the handler outlives `handlerTimeout`: stop
   * the work then. Until the handler's promise settles it still counts toward `maxConcurrent`.
   */
  readonly signal: AbortSignal;
}

/** Answers one request. Throwing (or rejecting) sends an error reply. */
export type RequestHandler = (
  data: Buffer,
  rinfo: RemoteInfo,
  request: RequestInfo,
) => HandlerResult | Promise<HandlerResult>;

/** Counters of a {@link Responder}. */
export interface ResponderStats {
  /** Requests handed to the handler. */
  handled: number;
  /** Retransmitted requests answered from the reply cache (handler not re-run). */
  cached: number;
  /** Retransmissions that arrived while the handler was still running (dropped; the reply follows). */
  inProgress: number;
  /** Requests dropped because `maxConcurrent` handlers (timed-out ones included) were busy. */
  overloaded: number;
  /** Handlers that threw, rejected or exceeded `handlerTimeout` (answered with an error reply). */
  handlerErrors: number;
  /** Datagrams with our magic but an unreadable header. */
  malformed: number;
  /** Replies that could not be sent (too large, socket closed, kernel error). */
  sendErrors: number;
  /** Requests dropped by the per-source rate limit (`rateLimit`). */
  rateLimited: number;
  /** Retransmissions not answered because their reply was already sent `maxReplays` times again. */
  replaysRefused: number;
  /** Replies larger than `maxAmplification` × the request: an empty error reply was sent, or a replay dropped. */
  amplificationRefused: number;
  /** Requests dropped because every reply-cache slot held a running handler (never with `cacheSize` > `maxConcurrent`). */
  cacheFull: number;
}

/** Events of {@link Responder}. */
export interface ResponderEvents {
  /** The handler threw or rejected, or its reply could not be sent. */
  handlerError: [error: unknown, rinfo: RemoteInfo];
}

const CONTROLLER = Symbol('controller');

/** The handler's `request` argument; the AbortController is only made if the handler reads `signal`. */
class Info implements RequestInfo {
  readonly id: number;
  [CONTROLLER]: AbortController | undefined = undefined;
  constructor(id: number) {
    this.id = id;
  }
  get signal(): AbortSignal {
    this[CONTROLLER] ??= new AbortController();
    return this[CONTROLLER].signal;
  }
}

/** A handler that returned a promise: what its outcome needs, allocated only on that path. */
interface AsyncHandler {
  slot: number;
  generation: number;
  id: number;
  rinfo: RemoteInfo;
  size: number;
  info: Info;
  /** The client was answered (result or timeout); later outcomes are ignored. */
  answered: boolean;
  timer: NodeJS.Timeout | undefined;
}

const DEFAULT_RATE = 500;
const DEFAULT_BURST = 1000;
const DEFAULT_MAX_REPLAYS = 8;

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
  readonly #limiter: SourceLimiter | undefined;
  readonly #limitLoopback: boolean;
  readonly #maxReplays: number;
  readonly #maxAmplification: number;
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
    rateLimited: 0,
    replaysRefused: 0,
    amplificationRefused: 0,
    cacheFull: 0,
  };

  constructor(socket: UdpSocket, handler: RequestHandler, options: ServeOptions = {}) {
    super();
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.socket = socket;
    this.#handler = handler;
    const cacheSize = positiveInt('cacheSize', options.cacheSize ?? 1024);
    this.#maxConcurrent = positiveInt('maxConcurrent', options.maxConcurrent ?? 256);
    // Every running handler holds a slot; one more guarantees a new request always finds one.
    if (cacheSize <= this.#maxConcurrent) {
      throw new InvalidArgumentError(
        `cacheSize (${cacheSize}) must be greater than maxConcurrent (${this.#maxConcurrent})`,
      );
    }
    this.#cache = new ReplyCache(cacheSize);
    this.#cacheTtl = options.cacheTtl ?? 30_000;
    if (!(this.#cacheTtl >= 0)) throw new InvalidArgumentError('cacheTtl must be >= 0');
    this.#exposeErrors = options.exposeErrors ?? false;
    this.#handlerTimeout = options.handlerTimeout ?? 10_000;
    if (!(this.#handlerTimeout > 0) || this.#handlerTimeout > 2 ** 31 - 1) {
      throw new InvalidArgumentError('handlerTimeout must be 1..2147483647 ms');
    }
    const limit = options.rateLimit ?? {};
    if (limit === false) {
      this.#limiter = undefined;
      this.#limitLoopback = false;
    } else {
      const rate = limit.rate ?? DEFAULT_RATE;
      const burst = limit.burst ?? Math.max(DEFAULT_BURST, rate);
      if (!(rate > 0) || !(burst >= 1) || !Number.isFinite(rate) || !Number.isFinite(burst)) {
        throw new InvalidArgumentError('rateLimit needs rate > 0 and burst >= 1 (finite)');
      }
      this.#limiter = new SourceLimiter(rate, burst);
      this.#limitLoopback = limit.loopback ?? false;
    }
    this.#maxReplays = options.maxReplays ?? DEFAULT_MAX_REPLAYS;
    if (!Number.isInteger(this.#maxReplays) || this.#maxReplays < 0 || this.#maxReplays > 255) {
      throw new InvalidArgumentError('maxReplays must be an integer in 0..255');
    }
    this.#maxAmplification = options.maxAmplification ?? Number.POSITIVE_INFINITY;
    if (!(this.#maxAmplification >= 1)) throw new InvalidArgumentError('maxAmplification must be >= 1');
    socket.on('message', this.#onMessage);
  }

  /** A snapshot of the counters. */
  get stats(): ResponderStats {
    return { ...this.#stats };
  }

  /** Handlers started and not yet settled (timed-out ones included). */
  get running(): number {
    return this.#running;
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
    const now = performance.now();
    const limiter = this.#limiter;
    if (
      limiter !== undefined &&
      (this.#limitLoopback || !isLoopback(rinfo.address)) &&
      !limiter.allow(rinfo.address, now)
    ) {
      this.#stats.rateLimited++;
      return;
    }
    const id = frame.id;
    const cache = this.#cache;
    const slot = cache.find(rinfo.address, rinfo.port, id);
    if (slot !== -1) {
      if (cache.state(slot) === RUNNING) {
        this.#stats.inProgress++;
        return;
      }
      if (cache.expires(slot) > now) {
        const reply = cache.reply(slot);
        if (reply === null) return;
        if (cache.replay(slot) > this.#maxReplays) {
          this.#stats.replaysRefused++;
          return;
        }
        if (reply.byteLength > this.#maxAmplification * data.byteLength) {
          this.#stats.amplificationRefused++;
          return;
        }
        this.#stats.cached++;
        this.#sendReply(reply, rinfo);
        return;
      }
    }
    if (this.#running >= this.#maxConcurrent) {
      this.#stats.overloaded++;
      return;
    }
    if (slot !== -1) cache.remove(slot);
    const fresh = cache.insert(rinfo.address, rinfo.port, id);
    if (fresh === -1) {
      this.#stats.cacheFull++;
      return;
    }
    const generation = cache.generation(fresh);
    this.#stats.handled++;
    this.#running++;
    const info = new Info(id);
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = this.#handler(frame.payload, rinfo, info);
    } catch (err) {
      this.#running--;
      this.#complete(fresh, generation, id, rinfo, data.byteLength, undefined, err, true);
      cache.release(fresh, generation);
      return;
    }
    if (isPromiseLike(result)) {
      const job: AsyncHandler = {
        slot: fresh,
        generation,
        id,
        rinfo,
        size: data.byteLength,
        info,
        answered: false,
        timer: undefined,
      };
      job.timer = setTimeout(this.#onHandlerTimeout, this.#handlerTimeout, job);
      job.timer.unref();
      result.then(
        (value) => this.#settleAsync(job, value, undefined, false),
        (err: unknown) => this.#settleAsync(job, undefined, err, true),
      );
    } else {
      this.#running--;
      this.#complete(fresh, generation, id, rinfo, data.byteLength, result, undefined, false);
      cache.release(fresh, generation);
    }
  };

  readonly #onHandlerTimeout = (job: AsyncHandler): void => {
    job.answered = true;
    job.timer = undefined;
    const error = new HandlerTimeoutError(this.#handlerTimeout);
    // The handler keeps its place in #running and its cache entry stays unevictable until its
    // promise settles: a handler that ignores the signal cannot make room for others, and a late
    // retransmission is answered from the cache instead of running it a second time.
    job.info[CONTROLLER]?.abort(error);
    this.#complete(job.slot, job.generation, job.id, job.rinfo, job.size, undefined, error, true);
  };

  #settleAsync(job: AsyncHandler, value: HandlerResult, error: unknown, failed: boolean): void {
    this.#running--;
    if (!job.answered) {
      job.answered = true;
      clearTimeout(job.timer);
      this.#complete(job.slot, job.generation, job.id, job.rinfo, job.size, value, error, failed);
    } // else: answered with ERR_UDP_HANDLER_TIMEOUT already; the outcome is discarded
    this.#cache.release(job.slot, job.generation);
  }

  #complete(
    slot: number,
    generation: number,
    id: number,
    rinfo: RemoteInfo,
    requestSize: number,
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
    // A bare error header (8 bytes) is never larger than the request (8 bytes or more).
    if (reply !== null && reply.byteLength > this.#maxAmplification * requestSize) {
      this.#stats.amplificationRefused++;
      reply = encodeFrame('error', id, '');
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
