import { memberEntry, type RedisKeys, splitMemberEntry } from './redis-keys.js';
import type { RedisLink, Reply } from './redis-link.js';
import { ADD_MEMBER, CLAIM, RELEASE, SWEEP } from './redis-scripts.js';
import { type RoomCount, StoreLimitError } from './types.js';

export interface RedisPresenceOptions {
  readonly keys: RedisKeys;
  readonly link: RedisLink;
  readonly node: string;
  /** Lifetime of a membership entry and of a nickname claim without a refresh. */
  readonly ttlMs: number;
  /** How long an operation waits for Redis to come back before failing. */
  readonly waitMs: number;
  /** Rooms with live members, all nodes together; joining one more new room fails. */
  readonly maxLiveRooms: number;
  /** New rooms per minute, all nodes together; more fail until the minute is over. */
  readonly maxRoomsCreatedPerMinute: number;
  /** The room the room list always includes, even when empty (the chat's default room). */
  readonly defaultRoom: string;
  /** Rooms the room list returns at most. */
  readonly maxRoomsListed: number;
  /** A member of a room with local listeners expired (its node died): announce the departure. */
  readonly onExpired: (room: string, nick: string) => void;
  readonly onWarning: (message: string) => void;
}

/**
 * Presence and nickname ownership shared by every node. Each node owns its entries: members are
 * `<node>|<nick>` in a per-room sorted set scored by expiry, nicknames are `SET NX PX` keys holding
 * `<node>|<session>`. A heartbeat every ttl/3 pushes the expiries forward; when a node dies its
 * entries simply stop being refreshed, so its users disappear within one TTL without anyone
 * having to notice the crash. Readers ignore expired entries; a sweep removes them.
 */
export class RedisPresence {
  private readonly o: RedisPresenceOptions;
  /** room -> lower-cased nick -> display nick, for this node's sessions. */
  private readonly local = new Map<string, Map<string, string>>();
  /**
   * Sessions on this node holding each local entry (one account's sessions share a name): the
   * entry is removed when the last of them leaves. room -> lower-cased nick -> count.
   */
  private readonly holders = new Map<string, Map<string, number>>();
  /** lower-cased nick -> owner value stored in Redis, for nicknames this node's sessions hold. */
  private readonly nicks = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(options: RedisPresenceOptions) {
    this.o = options;
  }

  start(sweepRooms: () => Iterable<string>): void {
    const interval = Math.max(100, Math.floor(this.o.ttlMs / 3));
    this.timer = setInterval(() => {
      if (this.beating) return; // a slow heartbeat (Redis down) is not stacked
      this.beating = this.heartbeat(sweepRooms()).finally(() => {
        this.beating = undefined;
      });
    }, interval);
    this.timer.unref();
  }

  private deadline(): number {
    return Date.now() + this.o.waitMs;
  }

  private owner(session: string): string {
    return `${this.o.node}|${session}`;
  }

  /** The value a session's nickname claims hold in Redis. */
  ownerOf(session: string): string {
    return this.owner(session);
  }

  async nickHeldBy(nick: string, owner: string): Promise<boolean> {
    return (await this.o.link.call(['GET', this.o.keys.nick(nick)], this.deadline())) === owner;
  }

  async claimNick(nick: string, session: string): Promise<boolean> {
    const owner = this.owner(session);
    const ok =
      (await this.o.link.script(
        CLAIM,
        [this.o.keys.nick(nick)],
        [owner, String(this.o.ttlMs)],
        this.deadline(),
      )) === 1;
    if (ok) this.nicks.set(nick.toLowerCase(), owner);
    return ok;
  }

  async releaseNick(nick: string, session: string): Promise<void> {
    const owner = this.owner(session);
    const key = nick.toLowerCase();
    if (this.nicks.get(key) === owner) this.nicks.delete(key);
    await this.o.link.script(RELEASE, [this.o.keys.nick(nick)], [owner], this.deadline());
  }

  async nickTaken(nick: string): Promise<boolean> {
    return (await this.o.link.call(['EXISTS', this.o.keys.nick(nick)], this.deadline())) === 1;
  }

  async addMember(room: string, nick: string): Promise<void> {
    let m = this.local.get(room);
    if (!m) this.local.set(room, (m = new Map()));
    const key = nick.toLowerCase();
    const fresh = !m.has(key);
    m.set(key, nick);
    let h = this.holders.get(room);
    if (!h) this.holders.set(room, (h = new Map()));
    h.set(key, (h.get(key) ?? 0) + 1);
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    let result: Reply;
    try {
      result = await this.o.link.script(
        ADD_MEMBER,
        [this.o.keys.members(room), this.o.keys.live(), this.o.keys.created(window)],
        [
          memberEntry(this.o.node, nick),
          String(now + this.o.ttlMs),
          room,
          String(now),
          String(this.o.maxLiveRooms),
          String(this.o.maxRoomsCreatedPerMinute),
          '120000',
          String(this.keyTtlMs()),
        ],
        this.deadline(),
      );
    } catch (err) {
      // Not a member after all: the heartbeat must not re-create the entry.
      if (fresh) this.forgetLocal(room, key);
      throw err;
    }
    if (result === 1) return;
    if (fresh) this.forgetLocal(room, key);
    throw new StoreLimitError(
      result === -1
        ? `too many rooms in use (${this.o.maxLiveRooms}); join an existing room`
        : 'too many new rooms right now; try again in a minute or join an existing room',
    );
  }

  private forgetLocal(room: string, key: string): void {
    const h = this.holders.get(room);
    h?.delete(key);
    if (h?.size === 0) this.holders.delete(room);
    const m = this.local.get(room);
    if (!m) return;
    m.delete(key);
    if (m.size === 0) this.local.delete(room);
  }

  /** A members key outlives its newest entry a little, then goes: nothing stays after every node died. */
  private keyTtlMs(): number {
    return this.o.ttlMs * 2;
  }

  async removeMember(room: string, nick: string): Promise<void> {
    const key = nick.toLowerCase();
    const h = this.holders.get(room);
    const left = (h?.get(key) ?? 1) - 1;
    if (left > 0) {
      h!.set(key, left);
      return;
    }
    this.forgetLocal(room, key);
    await this.o.link.call(
      ['ZREM', this.o.keys.members(room), memberEntry(this.o.node, nick)],
      this.deadline(),
    );
  }

  async members(room: string): Promise<string[]> {
    const reply = await this.o.link.call(
      ['ZRANGEBYSCORE', this.o.keys.members(room), String(Date.now()), '+inf'],
      this.deadline(),
    );
    const seen = new Map<string, string>();
    if (Array.isArray(reply)) {
      for (const e of reply) {
        const parsed = typeof e === 'string' ? splitMemberEntry(e) : undefined;
        if (parsed) seen.set(parsed.nick.toLowerCase(), parsed.nick);
      }
    }
    return [...seen.values()].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  }

  /**
   * Rooms with live members (plus the default room), at most maxRoomsListed, sorted by name. Bounded work
   * whatever the number of rooms: one range read of the live index and one ZCOUNT per listed room.
   */
  async rooms(): Promise<RoomCount[]> {
    const d = this.deadline();
    const now = String(Date.now());
    const names = await this.o.link.call(
      [
        'ZRANGE',
        this.o.keys.live(),
        '+inf',
        `(${now}`,
        'BYSCORE',
        'REV',
        'LIMIT',
        '0',
        String(this.o.maxRoomsListed),
      ],
      d,
    );
    const set = new Set<string>([this.o.defaultRoom]);
    if (Array.isArray(names)) for (const n of names) if (typeof n === 'string') set.add(n);
    const sorted = [...set].sort();
    // Pipelined: node-redis writes these back to back on the one connection.
    const counts = await Promise.all(
      sorted.map((room) => this.o.link.call(['ZCOUNT', this.o.keys.members(room), now, '+inf'], d)),
    );
    return sorted
      .map((room, i) => ({ room, members: typeof counts[i] === 'number' ? counts[i] : 0 }))
      .filter((r) => r.members > 0 || r.room === this.o.defaultRoom);
  }

  /**
   * Refresh this node's memberships and nickname claims, and sweep expired members of the rooms
   * this node follows. After a long outage the refresh also re-creates what expired meanwhile.
   */
  async heartbeat(sweepRooms: Iterable<string>): Promise<void> {
    const d = this.deadline();
    const now = Date.now();
    const expiry = String(now + this.o.ttlMs);
    const ops: Promise<unknown>[] = [];
    const keyTtl = String(this.keyTtlMs());
    for (const [room, m] of this.local) {
      const key = this.o.keys.members(room);
      const args = ['ZADD', key];
      for (const nick of m.values()) args.push(expiry, memberEntry(this.o.node, nick));
      ops.push(this.o.link.call(args, d));
      ops.push(this.o.link.call(['PEXPIRE', key, keyTtl], d));
      ops.push(this.o.link.call(['ZADD', this.o.keys.live(), 'GT', expiry, room], d));
    }
    ops.push(this.o.link.call(['ZREMRANGEBYSCORE', this.o.keys.live(), '-inf', `(${now}`], d));
    for (const [nick, owner] of this.nicks) {
      ops.push(
        this.o.link.script(CLAIM, [this.o.keys.nick(nick)], [owner, String(this.o.ttlMs)], d).then((r) => {
          if (r !== 1 && this.nicks.get(nick) === owner) {
            this.o.onWarning(`nickname ${nick} was taken by another node while Redis was unreachable`);
          }
        }),
      );
    }
    for (const room of sweepRooms) {
      ops.push(
        this.o.link
          .script(SWEEP, [this.o.keys.members(room)], [String(now), '1000'], d)
          .then((dead: Reply) => {
            if (!Array.isArray(dead)) return;
            for (const e of dead) {
              const parsed = typeof e === 'string' ? splitMemberEntry(e) : undefined;
              if (parsed && parsed.node !== this.o.node) this.o.onExpired(room, parsed.nick);
            }
          }),
      );
    }
    const results = await Promise.allSettled(ops);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) this.o.onWarning(`presence heartbeat: ${(failed.reason as Error).message}`);
  }

  /** This node's memberships, as [room, nick] pairs. */
  localMembers(): [string, string][] {
    const out: [string, string][] = [];
    for (const [room, m] of this.local) for (const nick of m.values()) out.push([room, nick]);
    return out;
  }

  /** Stop refreshing and remove what is left of this node's entries. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    const d = Date.now() + 1000;
    const ops: Promise<unknown>[] = [];
    for (const [room, m] of this.local) {
      ops.push(
        this.o.link.call(
          ['ZREM', this.o.keys.members(room), ...[...m.values()].map((n) => memberEntry(this.o.node, n))],
          d,
        ),
      );
    }
    for (const [nick, owner] of this.nicks)
      ops.push(this.o.link.script(RELEASE, [this.o.keys.nick(nick)], [owner], d));
    await Promise.allSettled(ops);
    this.local.clear();
    this.holders.clear();
    this.nicks.clear();
  }
}
