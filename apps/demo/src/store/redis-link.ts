import { ClientOfflineError, createClient, ErrorReply } from 'redis';
import type { RedisScript } from './redis-scripts.js';
import { StoreOutcomeUnknownError, StoreUnavailableError } from './types.js';

/** A RESP2 reply as node-redis hands it back for raw commands. */
export type Reply = string | number | null | Reply[];

export interface RedisLinkOptions {
  readonly url: string;
  /** Name shown in warnings and as CLIENT SETNAME. */
  readonly name: string;
  /** Keep the connection alive (and detect a dead peer) with a PING this often; 0 = never. */
  readonly pingIntervalMs?: number;
  /** Close and reconnect a socket idle this long; undefined = never (pub/sub, blocking reads). */
  readonly socketTimeoutMs?: number;
  readonly onWarning: (message: string) => void;
}

/** Redis replies that mean "not now" rather than "never": worth a retry after a pause. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/;

/** True when a failure is about reaching Redis (retry later), not about the command itself. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ErrorReply) return TRANSIENT_REPLY.test(err.message);
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One node-redis connection with the failure policy the chat needs: commands fail fast while
 * disconnected (no hidden offline queue that could run a write after we told the user it failed),
 * reconnection never gives up (capped backoff), and {@link call} waits a bounded time for the
 * connection to come back before giving up with a retryable {@link StoreUnavailableError}.
 */
export class RedisLink {
  readonly client;
  private readonly options: RedisLinkOptions;
  private readyWaiters: (() => void)[] = [];
  private lastWarning = 0;
  private closed = false;
  /** Bumped on every (re)connection; lets owners notice a new server session (e.g. CLIENT ID). */
  epoch = 0;

  constructor(options: RedisLinkOptions, offlineQueue = false) {
    this.options = options;
    this.client = createClient({
      url: options.url,
      RESP: 2,
      name: options.name,
      disableOfflineQueue: !offlineQueue,
      pingInterval: options.pingIntervalMs ?? 0,
      socket: {
        connectTimeout: 5000,
        ...(options.socketTimeoutMs ? { socketTimeout: options.socketTimeoutMs } : {}),
        // Never give up: a node outlives Redis restarts. 50 ms doubling, capped at 1 s, with jitter.
        reconnectStrategy: (retries: number) =>
          Math.min(50 * 2 ** Math.min(retries, 5), 1000) + Math.floor(Math.random() * 50),
      },
    });
    this.client.on('error', (err: Error) => this.warn(`${options.name}: ${err.message}`));
    this.client.on('ready', () => {
      this.epoch++;
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w();
    });
  }

  get ready(): boolean {
    return this.client.isReady;
  }

  /** Connect; rejects with StoreUnavailableError when Redis is not reachable within `timeoutMs`. */
  async connect(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `cannot reach Redis at ${redact(this.options.url)} within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.client.connect(), timeout]);
    } catch (err) {
      this.client.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Wait until connected, at most until `deadline` (epoch ms). Waiters wake in the order they
   * started waiting, so commands retried after a reconnect keep their original order.
   */
  waitReady(deadline: number): Promise<boolean> {
    if (this.client.isReady) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.readyWaiters.push(waiter);
      timer = setTimeout(
        () => {
          const i = this.readyWaiters.indexOf(waiter);
          if (i !== -1) this.readyWaiters.splice(i, 1);
          resolve(this.client.isReady);
        },
        Math.max(0, deadline - Date.now()),
      );
    });
  }

  /** Send one command once; connection problems reject (see {@link isTransient}). */
  send(args: string[]): Promise<Reply> {
    return this.client.sendCommand(args) as Promise<Reply>;
  }

  /**
   * Send a command, retrying transient failures until `deadline`. Only for commands that are safe
   * to repeat (reads, idempotent writes, scripts guarded by an idempotency key).
   */
  async call(args: string[], deadline: number): Promise<Reply> {
    // Whether an attempt may have reached Redis: its connection broke while it was in flight.
    // (Offline means never sent; an error reply means Redis refused it.)
    let maybeRan = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(args);
      } catch (err) {
        if (this.closed || !isTransient(err)) throw err;
        if (!(err instanceof ClientOfflineError) && !(err instanceof ErrorReply)) maybeRan = true;
        if (Date.now() >= deadline) throw unavailable(err, maybeRan);
        if (this.client.isReady) await sleep(Math.min(20 * 2 ** attempt, 250));
        else if (!(await this.waitReady(deadline))) throw unavailable(err, maybeRan);
      }
    }
  }

  /** Run a script by SHA, loading it when Redis does not know it (after a restart). */
  async script(s: RedisScript, keys: string[], args: string[], deadline: number): Promise<Reply> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.call(['EVALSHA', s.sha, ...tail], deadline);
    } catch (err) {
      if (err instanceof ErrorReply && err.message.startsWith('NOSCRIPT')) {
        return this.call(['EVAL', s.source, ...tail], deadline);
      }
      throw err;
    }
  }

  /** Connection trouble is logged at most once every 5 s per link, not once per retry. */
  warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 5000) return;
    this.lastWarning = now;
    this.options.onWarning(`redis ${message}`);
  }

  /**
   * Close the connection. `graceful` waits for replies still pending; a connection parked in a
   * blocking read or in subscriber mode is simply dropped.
   */
  async close(graceful = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.readyWaiters.splice(0)) w();
    try {
      if (graceful && this.client.isReady) await this.client.close();
      else this.client.destroy();
    } catch {
      this.client.destroy();
    }
  }
}

function unavailable(cause: unknown, maybeRan: boolean): StoreUnavailableError {
  const why = cause instanceof Error ? cause.message : String(cause);
  if (maybeRan) {
    return new StoreOutcomeUnknownError(
      `Redis is unavailable (${why}) and an attempt may have run; retry with the same key`,
      { cause },
    );
  }
  return new StoreUnavailableError(`Redis is unavailable (${why}); nothing was acknowledged, retry`, {
    cause,
  });
}

/** Hide a password in a redis://user:pass@host URL before it reaches a log line. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(invalid url)';
  }
}
