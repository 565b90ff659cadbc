import type { RedisKeys } from './redis-keys.js';
import type { RedisLink, Reply } from './redis-link.js';
import { compareIds, type StoredMessage } from './types.js';

export interface StreamReaderOptions {
  readonly keys: RedisKeys;
  /** The dedicated connection: XREAD BLOCK occupies it completely while it waits. */
  readonly link: RedisLink;
  /** A normal command connection, for CLIENT UNBLOCK. */
  readonly control: RedisLink;
  /** Called for every new entry of a followed room, in stream order, exactly once per entry. */
  readonly onMessage: (message: StoredMessage) => void;
  readonly onWarning: (message: string) => void;
  /** @default 5000 */
  readonly blockMs?: number;
  /** Entries per stream per XREAD. @default 512 */
  readonly batch?: number;
}

interface Feed {
  readonly room: string;
  readonly key: string;
  /** Last entry id delivered; undefined until the starting point is known. */
  pos: string | undefined;
  positioned: Promise<void>;
  markPositioned: () => void;
  waiters: { id: string; resolve: () => void }[];
}

/**
 * One blocking XREAD loop per node over every room with local members. It remembers the last id it
 * delivered per room, so after a Redis restart or a dropped connection the next XREAD continues
 * exactly there: nothing missed, nothing delivered twice.
 */
export class StreamReader {
  private readonly feeds = new Map<string, Feed>();
  private readonly byKey = new Map<string, Feed>();
  private readonly options: StreamReaderOptions;
  private readonly blockMs: number;
  private readonly batch: string;
  private closed = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Reader connection's CLIENT ID, for CLIENT UNBLOCK; refreshed after every reconnect. */
  private clientId: string | undefined;
  private clientIdEpoch = -1;
  /** Incremented per XREAD; an unblock request is for the XREAD that was current when asked. */
  private generation = 0;
  private blocked = false;

  constructor(options: StreamReaderOptions) {
    this.options = options;
    this.blockMs = options.blockMs ?? 5000;
    this.batch = String(options.batch ?? 512);
  }

  start(): void {
    this.running ??= this.loop();
  }

  has(room: string): boolean {
    return this.feeds.has(room);
  }

  /**
   * Start following a room from `startId` (the stream's last id when the first local member joined:
   * looked up on the command connection, so it is ordered before that member's history read).
   */
  follow(room: string): Feed {
    let feed = this.feeds.get(room);
    if (feed) return feed;
    let markPositioned = () => {};
    const positioned = new Promise<void>((r) => {
      markPositioned = r;
    });
    feed = {
      room,
      key: this.options.keys.stream(room),
      pos: undefined,
      positioned,
      markPositioned,
      waiters: [],
    };
    this.feeds.set(room, feed);
    this.byKey.set(feed.key, feed);
    return feed;
  }

  setStart(room: string, id: string): void {
    const feed = this.feeds.get(room);
    if (!feed || feed.pos !== undefined) return;
    feed.pos = id;
    feed.markPositioned();
    settle(feed);
    this.interrupt();
  }

  unfollow(room: string): void {
    const feed = this.feeds.get(room);
    if (!feed) return;
    this.feeds.delete(room);
    this.byKey.delete(feed.key);
    feed.markPositioned();
    for (const w of feed.waiters.splice(0)) w.resolve();
    // No interrupt: the current XREAD may keep listening to it until it returns; entries for an
    // unfollowed room are dropped.
  }

  /** Resolves once the room's starting point is known, or after `timeoutMs`. */
  async positioned(room: string, timeoutMs: number): Promise<void> {
    const feed = this.feeds.get(room);
    if (!feed || feed.pos !== undefined) return;
    await withTimeout(feed.positioned, timeoutMs);
  }

  /** Resolves once every entry up to `id` has been delivered for the room, or after `timeoutMs`. */
  async caughtUp(room: string, id: string, timeoutMs: number): Promise<boolean> {
    const feed = this.feeds.get(room);
    if (!feed) return true;
    if (feed.pos !== undefined && compareIds(feed.pos, id) >= 0) return true;
    let resolve = () => {};
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const waiter = { id, resolve };
    feed.waiters.push(waiter);
    const ok = await withTimeout(done, timeoutMs);
    const i = feed.waiters.indexOf(waiter);
    if (i !== -1) feed.waiters.splice(i, 1);
    return ok;
  }

  /** Make a blocked XREAD return now so the next one includes newly followed rooms. */
  private interrupt(): void {
    if (this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
      return;
    }
    if (!this.blocked || this.clientId === undefined) return;
    const generation = this.generation;
    const id = this.clientId;
    const attempt = (left: number) => {
      if (this.closed || this.generation !== generation || !this.blocked) return;
      this.options.control.send(['CLIENT', 'UNBLOCK', id]).then(
        (n) => {
          // 0: the XREAD has not reached Redis yet (it travels on another connection); try again.
          if (n === 0 && left > 0) setTimeout(() => attempt(left - 1), 20);
        },
        () => {},
      );
    };
    attempt(25);
  }

  private async loop(): Promise<void> {
    const { link } = this.options;
    while (!this.closed) {
      const feeds = [...this.feeds.values()].filter((f) => f.pos !== undefined);
      if (feeds.length === 0) {
        await new Promise<void>((r) => {
          this.wake = r;
        });
        continue;
      }
      try {
        if (this.clientIdEpoch !== link.epoch) {
          this.clientIdEpoch = link.epoch;
          this.clientId = String(await link.send(['CLIENT', 'ID']));
        }
        const args = ['XREAD', 'COUNT', this.batch, 'BLOCK', String(this.blockMs), 'STREAMS'];
        for (const f of feeds) args.push(f.key);
        for (const f of feeds) args.push(f.pos!);
        this.generation++;
        this.blocked = true;
        let reply: Reply;
        try {
          reply = await link.send(args);
        } finally {
          this.blocked = false;
        }
        this.deliver(reply);
      } catch (err) {
        if (this.closed) break;
        link.warn(`stream reader: ${(err as Error).message}; resuming from the last delivered ids`);
        this.clientId = undefined;
        if (!link.ready) await link.waitReady(Date.now() + 1000);
        else await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private deliver(reply: Reply): void {
    if (!Array.isArray(reply)) return; // null: BLOCK timed out or we were unblocked
    for (const stream of reply) {
      if (!Array.isArray(stream)) continue;
      const [key, entries] = stream;
      const feed = typeof key === 'string' ? this.byKey.get(key) : undefined;
      if (!feed || !Array.isArray(entries)) continue;
      for (const entry of entries) {
        const message = parseEntry(feed.room, entry);
        if (!message) {
          this.options.onWarning(`room ${feed.room}: skipped a malformed stream entry`);
          if (Array.isArray(entry) && typeof entry[0] === 'string') feed.pos = entry[0];
          continue;
        }
        if (feed.pos !== undefined && compareIds(message.id, feed.pos) <= 0) continue;
        feed.pos = message.id;
        this.options.onMessage(message);
        if (this.feeds.get(feed.room) !== feed) break; // unfollowed by a listener
      }
      settle(feed);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    for (const feed of this.feeds.values()) {
      feed.markPositioned();
      for (const w of feed.waiters.splice(0)) w.resolve();
    }
    // The blocked XREAD ends when the link is closed by the owner.
  }
}

/** Wake the waiters whose id the feed has reached. */
function settle(feed: Feed): void {
  if (feed.waiters.length === 0 || feed.pos === undefined) return;
  const pos = feed.pos;
  feed.waiters = feed.waiters.filter((w) => {
    if (compareIds(pos, w.id) < 0) return true;
    w.resolve();
    return false;
  });
}

/** A stream entry `[id, [field, value, ...]]` with fields n (nick), t (text), k (idempotency key). */
export function parseEntry(room: string, entry: Reply): StoredMessage | undefined {
  if (!Array.isArray(entry)) return undefined;
  const [id, fields] = entry;
  if (typeof id !== 'string' || !Array.isArray(fields)) return undefined;
  let nick: string | undefined;
  let text: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i];
    const v = fields[i + 1];
    if (typeof v !== 'string') continue;
    if (f === 'n') nick = v;
    else if (f === 't') text = v;
  }
  if (nick === undefined || text === undefined) return undefined;
  return { id, room, nick, text, ts: Number(id.slice(0, id.indexOf('-'))) };
}

async function withTimeout(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}
