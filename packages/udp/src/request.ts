import { getRandomValues } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  AbortError,
  InvalidArgumentError,
  RemoteError,
  SendError,
  SocketClosedError,
  TimeoutError,
  TooManyPendingError,
} from './errors.js';
import type { BackoffOptions, RequesterOptions, RequestOptions } from './options.js';
import { ABANDONED, ANSWERED, RecentIds } from './recent-ids.js';
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
  /** Ids come from the CSPRNG in batches, so guessing the next one is as hard as guessing 32 bits. */
  readonly #idPool = new Uint32Array(ID_BATCH);
  #idNext = ID_BATCH;
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
    // A name is resolved once and the request pinned to that address: replies must come from it.
    if (o.host !== undefined && isIP(o.host) === 0 && !this.socket.connected)
      return this.#requestByName(data, o);
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

  async #requestByName(data: Payload, o: RequestOptions): Promise<Reply> {
    const host = o.host!;
    const timeout = o.timeout ?? DEFAULT_TIMEOUT;
    if (!(timeout > 0) || timeout > MAX_DELAY)
      throw new InvalidArgumentError(`timeout must be 1..${MAX_DELAY} ms`);
    const started = performance.now();
    let address: string;
    try {
      ({ address } = await lookup(host, { family: this.socket.type === 'udp4' ? 4 : 6 }));
    } catch (err) {
      throw new SendError(o.port, host, err as Error);
    }
    const elapsed = performance.now() - started;
    if (elapsed >= timeout) throw new TimeoutError(0, elapsed);
    return this.request(data, { ...o, host: address, timeout: Math.max(1, Math.floor(timeout - elapsed)) });
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
    for (;;) {
      if (this.#idNext === ID_BATCH) {
        getRandomValues(this.#idPool);
        this.#idNext = 0;
      }
      const id = this.#idPool[this.#idNext++]!;
      if (!this.#pending.has(id & KEY_MASK) && this.#recent.get(id) === 0) return id;
    }
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

const NO_OPTIONS: RequestOptions = Object.freeze({});
/** Random ids drawn per `crypto.getRandomValues` call (one call per 256 requests). */
const ID_BATCH = 256;
/** Pending requests are keyed by the low 30 bits of their id: V8 small integers on every platform. */
const KEY_MASK = 0x3fffffff;

function noop(): void {}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  return value;
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
