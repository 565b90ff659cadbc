/**
 * Every Redis key and channel the chat uses, in one place. Room names are `[a-z0-9_.-]` (checked by
 * the chat core) and nicknames `[A-Za-z0-9_.-]`, so neither can contain the separators used here.
 * Per-room keys carry the room in a `{hash tag}` so a room's keys share one Redis Cluster slot and
 * the append script may touch them together.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** The room's message stream; the stream entry id is the message id. */
  stream(room: string): string {
    return `${this.prefix}{${room}}:log`;
  }
  /** Members of a room: a sorted set of `<node>|<nick>` scored by the entry's expiry (ms). */
  members(room: string): string {
    return `${this.prefix}{${room}}:members`;
  }
  /** Idempotency record of one append: the id the message got the first time. */
  dedup(room: string, key: string): string {
    return `${this.prefix}{${room}}:dedup:${key}`;
  }
  /** Pub/sub channel of a room's ephemeral events (join, leave, rename, typing). */
  events(room: string): string {
    return `${this.prefix}{${room}}:events`;
  }
  /**
   * Rooms with live members: a sorted set of room names scored by the latest member expiry (ms),
   * refreshed by every node's heartbeat; stale entries are ignored and pruned. The room list reads
   * a bounded slice of it. (Versions before it kept an unbounded set `<prefix>rooms`, no longer
   * written: it may be deleted.)
   */
  live(): string {
    return `${this.prefix}live`;
  }
  /** Rooms created (first member joined a room that was not live) in one time window, all nodes. */
  created(window: number): string {
    return `${this.prefix}created:${window}`;
  }
  /** Ownership of a nickname (lower-cased): `<node>|<session>`, with a TTL the owner refreshes. */
  nick(nick: string): string {
    return `${this.prefix}nick:${nick.toLowerCase()}`;
  }
  /** Pub/sub channel of direct messages to a nickname (lower-cased). */
  direct(nick: string): string {
    return `${this.prefix}dm:${nick.toLowerCase()}`;
  }
  /** A private room's ACL: a hash of `owner` and `created`; no expiry. */
  acl(room: string): string {
    return `${this.prefix}{${room}}:acl`;
  }
  /** A private room's members: a set of lower-cased principals; no expiry. */
  aclMembers(room: string): string {
    return `${this.prefix}{${room}}:acl-members`;
  }
  /** Names of all private rooms (a set), for the limit and the room list. */
  privateRooms(): string {
    return `${this.prefix}private-rooms`;
  }
  /** A value every node must agree on (e.g. the token signing secret). */
  secret(name: string): string {
    return `${this.prefix}secret:${name}`;
  }
  /** An account (JSON {name, hash, created}), by lower-cased name; no TTL. */
  account(name: string): string {
    return `${this.prefix}account:{${name.toLowerCase()}}`;
  }
  /** Ids of an account's login sessions (a set; entries may outlive their session and are ignored). */
  accountSessions(name: string): string {
    return `${this.prefix}account:{${name.toLowerCase()}}:sessions`;
  }
  /** One login session (JSON), expiring with it (PX). */
  session(id: string): string {
    return `${this.prefix}session:${id}`;
  }
  /** Pub/sub channel: ids of sessions ended (logout, password change, admin), JSON array. */
  sessionsEnded(): string {
    return `${this.prefix}sessions-ended`;
  }
  /** The room a stream key belongs to (inverse of {@link stream}). */
  roomOfStream(key: string): string | undefined {
    const start = this.prefix.length + 1;
    const end = key.indexOf('}', start);
    return end === -1 ? undefined : key.slice(start, end);
  }
}

/** Member entries are `<node>|<nick>`; node ids never contain `|`. */
export function memberEntry(node: string, nick: string): string {
  return `${node}|${nick}`;
}

export function splitMemberEntry(entry: string): { node: string; nick: string } | undefined {
  const bar = entry.indexOf('|');
  if (bar <= 0) return undefined;
  return { node: entry.slice(0, bar), nick: entry.slice(bar + 1) };
}
