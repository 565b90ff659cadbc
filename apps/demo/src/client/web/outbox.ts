/**
 * Un-acknowledged room messages of one client (browser page or terminal client), each with a
 * client message id (`cid`). A message leaves the outbox only when its `ack` arrives (or it is
 * refused for good): after a reconnect every pending message is sent again with the same cid, and
 * after a retryable `STORE_FAILED` (or `RATE_LIMITED`) it is sent again after a backoff. The server stores a cid once
 * per sender, so a resend of a message that was stored although its ack was lost is not doubled.
 * Pure (no sockets, no timers): the caller sends frames and schedules the retries it is told to.
 */
import type { ClientFrame } from '../../protocol/frames.js';

export interface OutboxOptions {
  /** Messages waiting for an ack at most; `add` refuses more. @default 100 */
  readonly maxPending?: number;
  /** Resends of one message after STORE_FAILED / RATE_LIMITED before giving up (reconnects do not count). @default 8 */
  readonly maxAttempts?: number;
  /** First retry delay after STORE_FAILED, doubled per attempt. @default 500 */
  readonly baseDelayMs?: number;
  /** Longest retry delay. @default 8000 */
  readonly maxDelayMs?: number;
}

export interface PendingMessage {
  readonly cid: string;
  readonly room: string;
  readonly text: string;
  /** Sends after a STORE_FAILED so far. */
  attempts: number;
}

/** What to do after an `error` frame that carries one of our cids. */
export type ErrorDecision =
  | { readonly action: 'retry'; readonly delayMs: number; readonly message: PendingMessage }
  /** The server is going away: keep it, the reconnect resends it. */
  | { readonly action: 'wait'; readonly message: PendingMessage }
  /** Refused for good (too long, not in room, retries used up): dropped from the outbox. */
  | { readonly action: 'drop'; readonly message: PendingMessage; readonly gaveUp: boolean }
  | { readonly action: 'unknown' };

function randomPrefix(): string {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export class Outbox {
  private readonly pending = new Map<string, PendingMessage>();
  private readonly prefix: string;
  private seq = 0;
  private readonly maxPending: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(options: OutboxOptions = {}, prefix = randomPrefix()) {
    this.prefix = prefix;
    this.maxPending = options.maxPending ?? 100;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 8000;
  }

  get size(): number {
    return this.pending.size;
  }

  get full(): boolean {
    return this.pending.size >= this.maxPending;
  }

  /** A new message: its `send` frame, or undefined when the outbox is full. */
  add(room: string, text: string): ClientFrame | undefined {
    if (this.full) return undefined;
    // "<random>.<n>": unique per page/process lifetime, 1-64 printable characters as required.
    const message: PendingMessage = { cid: `${this.prefix}.${++this.seq}`, room, text, attempts: 0 };
    this.pending.set(message.cid, message);
    return Outbox.frame(message);
  }

  /** The ack for a cid arrived; true when it was one of ours still pending. */
  acked(cid: string | undefined): boolean {
    return cid !== undefined && this.pending.delete(cid);
  }

  failed(cid: string | undefined, code: string): ErrorDecision {
    const message = cid === undefined ? undefined : this.pending.get(cid);
    if (!message) return { action: 'unknown' };
    if (code === 'SHUTTING_DOWN') return { action: 'wait', message };
    // STORE_FAILED: not stored (the store was away); RATE_LIMITED: a burst of resends after a
    // reconnect went over the server's token bucket. Both succeed later; both are bounded here.
    // OUTCOME_UNKNOWN: maybe stored; the resend with the same cid returns the first id if it was.
    if (code === 'STORE_FAILED' || code === 'OUTCOME_UNKNOWN' || code === 'RATE_LIMITED') {
      if (message.attempts < this.maxAttempts) {
        const delay = Math.min(this.baseDelayMs * 2 ** message.attempts, this.maxDelayMs);
        message.attempts++;
        // Jitter, so clients that failed together do not come back together.
        return { action: 'retry', delayMs: Math.round(delay * (0.8 + Math.random() * 0.4)), message };
      }
      this.pending.delete(message.cid);
      return { action: 'drop', message, gaveUp: true };
    }
    this.pending.delete(message.cid);
    return { action: 'drop', message, gaveUp: false };
  }

  /** The frame to resend for a cid (a scheduled retry), or undefined when it was acked meanwhile. */
  resend(cid: string): ClientFrame | undefined {
    const message = this.pending.get(cid);
    return message ? Outbox.frame(message) : undefined;
  }

  /** Every pending message in the order it was typed: sent again after a reconnect. */
  resendAll(): ClientFrame[] {
    return [...this.pending.values()].map(Outbox.frame);
  }

  /** Pending messages, for keeping them across a page reload. */
  list(): PendingMessage[] {
    return [...this.pending.values()];
  }

  /** Restore messages kept by {@link list} (same cids, so a resend is still deduplicated). */
  restore(messages: readonly PendingMessage[]): void {
    for (const m of messages) {
      if (this.full) break;
      if (typeof m?.cid !== 'string' || typeof m.room !== 'string' || typeof m.text !== 'string') continue;
      this.pending.set(m.cid, { cid: m.cid, room: m.room, text: m.text, attempts: 0 });
    }
  }

  private static frame(m: PendingMessage): ClientFrame {
    return { type: 'send', room: m.room, text: m.text, cid: m.cid };
  }
}
