import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ErrorReply } from 'redis';
import { DEFAULT_ROOM } from '../protocol/frames.js';
import { StoreClosedError } from './errors.js';
import type { AccountLimits } from './accounts.js';
import { RedisAccounts } from './redis-accounts.js';
import { RedisAcl } from './redis-acl.js';
import type { RoomAclLimits } from './room-acl.js';
import { RedisKeys } from './redis-keys.js';
import { RedisLink, type Reply, redact } from './redis-link.js';
import { RedisPresence } from './redis-presence.js';
import { parseEntry, StreamReader } from './redis-reader.js';
import { APPEND } from './redis-scripts.js';
import {
  type AppendOptions,
  type ChatStore,
  compareIds,
  type DirectEvent,
  directAddress,
  type ReadOptions,
  type ReadResult,
  type RoomCount,
  type RoomEvent,
  type StoredMessage,
  type StoreHealth,
  StoreOutcomeUnknownError,
  StoreUnavailableError,
  type Unsubscribe,
} from './types.js';

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string;
  /** Prefix of every key and channel, so several chats can share one Redis. @default 'chat:' */
  readonly keyPrefix?: string;
  /** This node's identity in presence and nickname ownership. @default `<host>-<pid>-<random>` */
  readonly nodeId?: string;
  /** Approximate cap of messages kept per room stream (XADD MAXLEN ~). @default 10000 */
  readonly maxLenPerRoom?: number;
  /**
   * A room's stream (its history) expires this long after its last message: idle rooms do not
   * stay in Redis forever. @default 604800000 (7 days)
   */
  readonly roomRetentionMs?: number;
  /** Rooms with live members, all nodes together; a join creating one more fails with ROOM_LIMIT. @default 10000 */
  readonly maxLiveRooms?: number;
  /** New rooms per minute, all nodes together; more fail with ROOM_LIMIT. @default 600 */
  readonly maxRoomsCreatedPerMinute?: number;
  /** Rooms the room list (`/rooms`, `GET /api/rooms`) returns at most. @default 200 */
  readonly maxRoomsListed?: number;
  /**
   * Lifetime of presence entries and nickname claims without a heartbeat: how long a crashed
   * node's users stay listed. Heartbeats run every ttl/3. @default 6000
   */
  readonly presenceTtlMs?: number;
  /** How long a client message id is remembered for deduplicating retries. @default 120000 */
  readonly dedupTtlMs?: number;
  /**
   * How long an operation waits for Redis to come back (restart, failover) before it fails with
   * StoreUnavailableError. Appends waiting meanwhile are acknowledged once stored. @default 5000
   */
  readonly unavailableTimeoutMs?: number;
  /** Appends allowed to wait for Redis at once; more fail right away. @default 10000 */
  readonly maxPendingAppends?: number;
  /** How long the first connection may take before open() fails. @default 10000 */
  readonly connectTimeoutMs?: number;
  /** The room the room list always includes (the chat's default room). @default 'lobby' */
  readonly defaultRoom?: string;
  /** Accounts and sessions kept at most (see AccountLimits). */
  readonly accountLimits?: AccountLimits;
  /** Private rooms and members kept at most (see RoomAclLimits). */
  readonly aclLimits?: RoomAclLimits;
  /** Notes about connection trouble and recovery (rate limited). */
  readonly onWarning?: (message: string) => void;
}

interface DirectEnvelope {
  /** Publishing node: it delivered to its own listeners already. */
  readonly o: string;
  readonly e: DirectEvent;
}

interface RoomSubs {
  readonly listeners: Set<(event: RoomEvent) => void>;
}

interface EventEnvelope {
  /** Publishing node: its own events were already delivered locally. */
  readonly o: string;
  readonly e: Exclude<RoomEvent, { kind: 'message' }>;
}

/**
 * The shared store for several chat nodes (issue 9), on Redis 7:
 * - room messages: one stream per room; the entry id is the message id, so ids and order are the
 *   same on every node, and resume-from-id works whichever node a client reconnects to;
 * - fan-out: one blocking XREAD loop per node (its own connection) over the rooms with local
 *   members, resuming from the last delivered id after any reconnect;
 * - an append is acknowledged only once XADD succeeded (Redis runs with appendfsync always for
 *   "acknowledged = durable"); while Redis is unreachable it waits (bounded) and then fails with
 *   the retryable StoreUnavailableError; retries are made safe by an idempotency key per message;
 * - presence and nicknames: per-node entries with TTL heartbeats (see RedisPresence);
 * - ephemeral events (join, leave, rename, typing) and direct messages: pub/sub on a third,
 *   subscriber-only connection.
 */
export class RedisStore implements ChatStore {
  readonly node: string;
  private readonly redisUrl: string;
  private readonly keys: RedisKeys;
  private readonly cmd: RedisLink;
  private readonly blocking: RedisLink;
  private readonly sub: RedisLink;
  private readonly reader: StreamReader;
  private readonly presence: RedisPresence;
  private readonly subs = new Map<string, RoomSubs>();
  private readonly direct = new Map<string, Set<(event: DirectEvent) => void>>();
  readonly accounts: RedisAccounts;
  /** Private rooms (keys without expiry). */
  readonly acls: RedisAcl;
  private readonly maxLen: string;
  private readonly retention: string;
  private readonly dedupTtl: string;
  private readonly waitMs: number;
  private readonly maxPending: number;
  private readonly connectTimeoutMs: number;
  private readonly onWarning: (message: string) => void;
  private pending = 0;
  private seq = 0;
  private opened = false;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.node =
      options.nodeId ??
      `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
    if (this.node.includes('|')) throw new TypeError('nodeId must not contain "|"');
    if (!/^rediss?:\/\/[^\s/]/.test(options.url) || !URL.canParse(options.url)) {
      const shown = URL.canParse(options.url) ? redact(options.url) : options.url.replace(/^.*@/, '***@');
      throw new TypeError(`redis URL "${shown}" must look like redis://host:port or rediss://host:port`);
    }
    this.redisUrl = options.url;
    this.keys = new RedisKeys(options.keyPrefix ?? 'chat:');
    this.maxLen = String(options.maxLenPerRoom ?? 10_000);
    this.retention = String(options.roomRetentionMs ?? 7 * 24 * 3600_000);
    this.dedupTtl = String(options.dedupTtlMs ?? 120_000);
    this.waitMs = options.unavailableTimeoutMs ?? 5000;
    this.maxPending = options.maxPendingAppends ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.onWarning = options.onWarning ?? (() => {});
    const base = { url: options.url, onWarning: this.onWarning };
    this.cmd = new RedisLink({
      ...base,
      name: `chat-${this.node}-cmd`,
      pingIntervalMs: 2000,
      socketTimeoutMs: 10_000,
    });
    this.blocking = new RedisLink({ ...base, name: `chat-${this.node}-read`, socketTimeoutMs: 15_000 });
    // Pub/sub keeps node-redis' offline queue: (un)subscribes are idempotent and node-redis
    // re-subscribes every channel after a reconnect.
    this.sub = new RedisLink({ ...base, name: `chat-${this.node}-sub` }, true);
    this.reader = new StreamReader({
      keys: this.keys,
      link: this.blocking,
      control: this.cmd,
      onMessage: (m) => this.emit(m.room, { kind: 'message', message: m }),
      onWarning: this.onWarning,
    });
    this.acls = new RedisAcl({ ...options.aclLimits, keys: this.keys, link: this.cmd, waitMs: this.waitMs });
    this.accounts = new RedisAccounts({
      ...options.accountLimits,
      keys: this.keys,
      link: this.cmd,
      sub: this.sub,
      waitMs: this.waitMs,
      onWarning: this.onWarning,
    });
    this.presence = new RedisPresence({
      keys: this.keys,
      link: this.cmd,
      node: this.node,
      ttlMs: options.presenceTtlMs ?? 6000,
      waitMs: this.waitMs,
      maxLiveRooms: options.maxLiveRooms ?? 10_000,
      maxRoomsCreatedPerMinute: options.maxRoomsCreatedPerMinute ?? 600,
      maxRoomsListed: options.maxRoomsListed ?? 200,
      defaultRoom: options.defaultRoom ?? DEFAULT_ROOM,
      onWarning: this.onWarning,
      onExpired: (room, nick) => {
        const event = { kind: 'leave' as const, room, nick, ts: Date.now() };
        this.publish(event).catch(() => {});
      },
    });
  }

  get url(): string {
    return redact(this.redisUrl);
  }

  async open(): Promise<void> {
    if (this.opened) return;
    try {
      await Promise.all([
        this.cmd.connect(this.connectTimeoutMs),
        this.blocking.connect(this.connectTimeoutMs),
        this.sub.connect(this.connectTimeoutMs),
      ]);
    } catch (err) {
      await Promise.allSettled([this.cmd.close(), this.blocking.close(), this.sub.close()]);
      throw err;
    }
    this.opened = true;
    this.reader.start();
    this.presence.start(() => this.subs.keys());
  }

  /**
   * A secret shared by every node, created by whichever node asks first (SET NX): the signing key
   * of login tokens, so a token issued by one node is accepted by all of them.
   */
  async sharedSecret(name: string, create: () => string): Promise<string> {
    const key = this.keys.secret(name);
    const d = Date.now() + this.waitMs;
    await this.cmd.call(['SET', key, create(), 'NX'], d);
    const value = await this.cmd.call(['GET', key], d);
    if (typeof value !== 'string') throw new StoreUnavailableError(`shared secret ${name} vanished; retry`);
    return value;
  }

  async append(room: string, nick: string, text: string, options?: AppendOptions): Promise<StoredMessage> {
    if (this.closed || !this.opened) throw new StoreClosedError();
    if (this.pending >= this.maxPending) {
      throw new StoreUnavailableError(`too many messages waiting for Redis (${this.maxPending}); retry`);
    }
    // A client id makes the client's own retries safe; without one, the node's key still makes
    // this call's internal retries (after a dropped connection) safe.
    const key =
      options?.clientId !== undefined
        ? `c:${nick.toLowerCase()}:${options.clientId}`
        : `s:${this.node}:${++this.seq}`;
    const deadline = Date.now() + this.waitMs;
    this.pending++;
    try {
      const reply = await withDeadline(
        this.cmd.script(
          APPEND,
          [this.keys.stream(room), this.keys.dedup(room, key)],
          [this.maxLen, nick, text, key, this.dedupTtl, this.retention],
          deadline,
        ),
        deadline,
      );
      const id = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
      if (!id) throw new Error(`unexpected reply to append: ${JSON.stringify(reply)}`);
      return { id, room, nick, text, ts: Number(id.slice(0, id.indexOf('-'))) };
    } finally {
      this.pending--;
    }
  }

  async read(room: string, options: ReadOptions): Promise<ReadResult> {
    const limit = Math.max(0, Math.floor(options.limit));
    // A member that just subscribed: its starting point must be fixed before this read is sent,
    // so every entry is either in this read or delivered live (see subscribe()).
    await this.reader.positioned(room, this.waitMs);
    const d = Date.now() + this.waitMs;
    const key = this.keys.stream(room);
    let messages: StoredMessage[];
    let truncated = false;
    if (limit === 0) {
      messages = [];
    } else if (options.after === undefined) {
      const reply = await this.cmd.call(['XREVRANGE', key, '+', '-', 'COUNT', String(limit)], d);
      messages = parseEntries(room, reply).reverse();
    } else {
      const [reply, gap] = await Promise.all([
        this.cmd.call(['XRANGE', key, `(${options.after}`, '+', 'COUNT', String(limit + 1)], d),
        this.trimmedAfter(key, options.after, d),
      ]);
      messages = parseEntries(room, reply);
      truncated = gap;
      if (messages.length > limit) {
        messages.length = limit;
        truncated = true;
      }
    }
    // Hold the answer until the live feed has passed what it returns: a message is then either
    // replayed (and dropped from the live buffer by the core) or arrives live afterwards, never both.
    const last = messages.at(-1);
    if (last && this.reader.has(room) && !(await this.reader.caughtUp(room, last.id, this.waitMs))) {
      this.onWarning(`room ${room}: live feed lagging behind history read`);
    }
    return { messages, truncated };
  }

  /**
   * Whether MAXLEN trimming may have removed messages newer than `after`: `after` is older than
   * the stream's first entry and entries were removed. The client is then told `truncated`.
   */
  private async trimmedAfter(key: string, after: string, deadline: number): Promise<boolean> {
    let info: Reply;
    try {
      info = await this.cmd.call(['XINFO', 'STREAM', key], deadline);
    } catch (err) {
      if (err instanceof ErrorReply) return false; // no such key: nothing was ever trimmed
      throw err;
    }
    if (!Array.isArray(info)) return false;
    const field = (name: string): Reply | undefined => {
      const i = info.indexOf(name);
      return i === -1 ? undefined : info[i + 1];
    };
    const first = field('first-entry');
    const firstId = Array.isArray(first) && typeof first[0] === 'string' ? first[0] : undefined;
    const added = Number(field('entries-added'));
    const length = Number(field('length'));
    return firstId !== undefined && added > length && compareIds(after, firstId) < 0;
  }

  subscribe(room: string, listener: (event: RoomEvent) => void): Unsubscribe {
    let subs = this.subs.get(room);
    if (!subs) {
      subs = { listeners: new Set() };
      this.subs.set(room, subs);
      this.reader.follow(room);
      this.locateStart(room);
      this.sub.client.subscribe(this.keys.events(room), this.onRoomEvent).catch((err: Error) => {
        this.onWarning(`subscribe ${room}: ${err.message}`);
      });
    }
    const s = subs;
    s.listeners.add(listener);
    return () => {
      if (!s.listeners.delete(listener) || s.listeners.size > 0 || this.subs.get(room) !== s) return;
      this.subs.delete(room);
      this.reader.unfollow(room);
      if (!this.closed) {
        this.sub.client.unsubscribe(this.keys.events(room), this.onRoomEvent).catch(() => {});
      }
    };
  }

  /**
   * The live feed of a newly followed room starts at the stream's last id. The lookup goes out on
   * the command connection right now, ahead of the subscriber's history read on that same
   * connection, so history and live feed meet without a gap.
   */
  private locateStart(room: string): void {
    const attempt = (): void => {
      if (!this.reader.has(room) || this.closed) return;
      this.cmd
        .call(['XREVRANGE', this.keys.stream(room), '+', '-', 'COUNT', '1'], Date.now() + this.waitMs)
        .then(
          (reply) => {
            const first = Array.isArray(reply) ? reply[0] : undefined;
            const id = Array.isArray(first) && typeof first[0] === 'string' ? first[0] : '0-0';
            this.reader.setStart(room, id);
          },
          () => setTimeout(attempt, 500),
        );
    };
    attempt();
  }

  private readonly onRoomEvent = (payload: string): void => {
    let env: EventEnvelope;
    try {
      env = JSON.parse(payload) as EventEnvelope;
    } catch {
      return;
    }
    if (env.o === this.node || typeof env.e?.room !== 'string') return;
    this.emit(env.e.room, env.e);
  };

  async publish(event: Exclude<RoomEvent, { kind: 'message' }>): Promise<void> {
    // Local members hear it at once (also while Redis is down); other nodes via pub/sub.
    this.emit(event.room, event);
    if (this.closed) return;
    const envelope: EventEnvelope = { o: this.node, e: event };
    try {
      await this.cmd.send(['PUBLISH', this.keys.events(event.room), JSON.stringify(envelope)]);
    } catch {
      // Ephemeral by definition: a notice lost during an outage is not worth failing a join for.
    }
  }

  claimNick(nick: string, owner: string): Promise<boolean> {
    return this.presence.claimNick(nick, owner);
  }
  releaseNick(nick: string, owner: string): Promise<void> {
    return this.presence.releaseNick(nick, owner);
  }
  nickTaken(nick: string): Promise<boolean> {
    return this.presence.nickTaken(nick);
  }

  nickHeldBy(nick: string, owner: string): Promise<boolean> {
    return this.presence.nickHeldBy(nick, owner);
  }
  nickOwner(session: string): string {
    return this.presence.ownerOf(session);
  }

  /**
   * Local listeners get the event at once; other nodes through PUBLISH, whose reply counts the
   * nodes subscribed to the address (this one included when it has listeners, and it skips its
   * own envelope), so "delivered" is known without asking anyone.
   */
  async sendDirect(event: DirectEvent): Promise<boolean> {
    const address = directAddress(event);
    const local = this.direct.get(address);
    const delivered = local ? local.size : 0;
    if (local) for (const l of [...local]) l(event);
    const envelope: DirectEnvelope = { o: this.node, e: event };
    const n = await this.cmd.call(
      ['PUBLISH', this.keys.direct(address), JSON.stringify(envelope)],
      Date.now() + this.waitMs,
    );
    const remote = (typeof n === 'number' ? n : 0) - (local && local.size > 0 ? 1 : 0);
    return delivered > 0 || remote > 0;
  }

  subscribeDirect(address: string, listener: (event: DirectEvent) => void): Unsubscribe {
    const key = address.toLowerCase();
    let set = this.direct.get(key);
    const channel = this.keys.direct(key);
    if (!set) {
      this.direct.set(key, (set = new Set()));
      this.sub.client
        .subscribe(channel, this.onDirect)
        .catch((err: Error) => this.onWarning(`subscribe dm: ${err.message}`));
    }
    set.add(listener);
    const s = set;
    return () => {
      if (!s.delete(listener) || s.size > 0 || this.direct.get(key) !== s) return;
      this.direct.delete(key);
      if (!this.closed) this.sub.client.unsubscribe(channel, this.onDirect).catch(() => {});
    };
  }

  private readonly onDirect = (payload: string): void => {
    let env: DirectEnvelope;
    try {
      env = JSON.parse(payload) as DirectEnvelope;
    } catch {
      return;
    }
    if (env.o === this.node || typeof env.e?.to !== 'string') return;
    const set = this.direct.get(directAddress(env.e));
    if (set) for (const l of [...set]) l(env.e);
  };

  addMember(room: string, nick: string): Promise<void> {
    return this.presence.addMember(room, nick);
  }
  removeMember(room: string, nick: string): Promise<void> {
    return this.presence.removeMember(room, nick);
  }
  members(room: string): Promise<string[]> {
    return this.presence.members(room);
  }
  rooms(): Promise<RoomCount[]> {
    return this.presence.rooms();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The server closes the store only after every session's close() has finished (it is
    // idempotent and shared), so no leave is still in flight here.
    if (this.opened) {
      // Members still here (their session did not get to leave) are announced as leaving.
      const ts = Date.now();
      await Promise.allSettled(
        this.presence.localMembers().map(([room, nick]) => this.publish({ kind: 'leave', room, nick, ts })),
      );
    }
    this.closed = true;
    await this.reader.close();
    if (this.opened) await this.presence.close();
    await Promise.allSettled([this.blocking.close(false), this.sub.close(false)]);
    await this.cmd.close();
  }

  /**
   * Reachable right now: the command connection is up and answers PING within `timeoutMs`.
   * Used by /healthz (503 when not) and /metrics (`chat_store_up`).
   */
  async health(timeoutMs = 1000): Promise<StoreHealth> {
    if (this.closed || !this.opened) return { store: 'redis', ok: false, error: 'store closed' };
    if (!this.cmd.ready) return { store: 'redis', ok: false, error: 'not connected to Redis' };
    try {
      const pong = await withDeadline(this.cmd.send(['PING']), Date.now() + timeoutMs - 250);
      return pong === 'PONG'
        ? { store: 'redis', ok: true }
        : { store: 'redis', ok: false, error: `unexpected PING reply ${String(pong)}` };
    } catch (err) {
      return { store: 'redis', ok: false, error: (err as Error).message };
    }
  }

  private emit(room: string, event: RoomEvent): void {
    const subs = this.subs.get(room);
    if (!subs) return;
    for (const listener of subs.listeners) listener(event);
  }
}

function parseEntries(room: string, reply: Reply): StoredMessage[] {
  const out: StoredMessage[] = [];
  if (!Array.isArray(reply)) return out;
  for (const entry of reply) {
    const m = parseEntry(room, entry);
    if (m) out.push(m);
  }
  return out;
}

/**
 * Give up waiting at the deadline even if a command is stuck on a half-dead connection. The
 * command went out, so whether it ran is unknown: StoreOutcomeUnknownError (retry with the same key).
 */
function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StoreOutcomeUnknownError(
            'Redis did not answer in time; the write may or may not have happened, retry with the same key',
          ),
        ),
      Math.max(0, deadline - Date.now()) + 250,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
