import type { AccountStore } from './accounts.js';
import type { RoomAclStore } from './room-acl.js';

/**
 * The one storage interface the chat core talks to. Two implementations: the default in-process
 * fan-out + append-only file log (file-store.ts), and a Redis Streams store shared by several
 * nodes (redis-store.ts). Everything is async so a networked store fits, and ids are
 * strings shaped like Redis stream ids ("<ms>-<seq>") so they compare in order across both.
 */

/** A durable room message. */
export interface StoredMessage {
  /** "<ms>-<seq>", strictly increasing within a room; compare with {@link compareIds}. */
  readonly id: string;
  readonly room: string;
  readonly nick: string;
  readonly text: string;
  /** Milliseconds since the epoch when the store accepted the message. */
  readonly ts: number;
}

/** What a store fans out to the subscribers of one room. Only `message` is durable. */
export type RoomEvent =
  | { readonly kind: 'message'; readonly message: StoredMessage }
  | { readonly kind: 'join' | 'leave'; readonly room: string; readonly nick: string; readonly ts: number }
  | {
      readonly kind: 'rename';
      readonly room: string;
      readonly from: string;
      readonly to: string;
      readonly ts: number;
    }
  | { readonly kind: 'typing'; readonly room: string; readonly nick: string; readonly ts: number }
  /** A private room's owner removed `principal`: its connections on every node leave the room. */
  | {
      readonly kind: 'kick';
      readonly room: string;
      readonly principal: string;
      readonly by: string;
      readonly ts: number;
    };

/**
 * A direct message, routed to every connection subscribed to its address on any node. The chat
 * core addresses an account as `a:<name>` (all of its sessions) and a guest as `n:<nick>`; without
 * `address` the event goes to `to` (the nickname).
 */
export interface DirectEvent {
  readonly kind: 'dm';
  readonly from: string;
  readonly to: string;
  /** Routing key, case-insensitive; @default to */
  readonly address?: string;
  readonly text: string;
  readonly ts: number;
}

export interface RoomCount {
  readonly room: string;
  readonly members: number;
}

export type Unsubscribe = () => void;

export interface StoreHealth {
  /** Which store: `file` or `redis`. */
  readonly store: string;
  readonly ok: boolean;
  /** Why not, when `ok` is false. */
  readonly error?: string;
}

export interface ReadOptions {
  /** Return messages with id strictly greater than this; without it, the newest `limit`. */
  readonly after?: string | undefined;
  /** Maximum number of messages returned. */
  readonly limit: number;
}

export interface ReadResult {
  readonly messages: StoredMessage[];
  /** True when messages after `after` exist that were not returned (limit hit or retention). */
  readonly truncated: boolean;
}

export interface AppendOptions {
  /**
   * Idempotency key chosen by the client for this message (unique per sender). A store that can
   * fail ambiguously (a networked one: the write may have landed although the reply was lost)
   * stores a message at most once per (room, nick, clientId) within a window, and answers a
   * retry with the message first stored. Stores without ambiguous failures may ignore it.
   */
  readonly clientId?: string | undefined;
}

export interface ChatStore {
  /** Recover durable state; must be called before anything else. */
  open(): Promise<void>;
  /**
   * Append a room message; resolves only after the message is durable, with its id. Rejects with
   * {@link StoreUnavailableError} when the store cannot be reached (nothing acknowledged: retry).
   */
  append(room: string, nick: string, text: string, options?: AppendOptions): Promise<StoredMessage>;
  /** Messages of a room after an id (or the newest ones), oldest first. */
  read(room: string, options: ReadOptions): Promise<ReadResult>;
  /** Receive every event of a room (messages in id order, presence, typing) from any node. */
  subscribe(room: string, listener: (event: RoomEvent) => void): Unsubscribe;
  /** Publish a non-durable room event (presence change, typing) to the room's subscribers. */
  publish(event: Exclude<RoomEvent, { kind: 'message' }>): Promise<void>;

  /** Claim a nickname (case-insensitive) for an owner; false when someone else holds it. */
  claimNick(nick: string, owner: string): Promise<boolean>;
  /** Release a nickname if `owner` holds it. */
  releaseNick(nick: string, owner: string): Promise<void>;
  /** Whether anyone holds the nickname right now. */
  nickTaken(nick: string): Promise<boolean>;
  /**
   * Whether `owner` (see {@link ChatStore.nickOwner}) holds the nickname right now: a guest's HTTP
   * token is live only while the connection that asked for it still holds its name.
   */
  nickHeldBy(nick: string, owner: string): Promise<boolean>;
  /** The store-wide owner value of a session's nickname claims (Redis adds the node). */
  nickOwner(session: string): string;
  /**
   * Deliver a direct event to every listener of its address (`event.address ?? event.to`) on every
   * node; false when nobody listens.
   */
  sendDirect(event: DirectEvent): Promise<boolean>;
  /** Receive direct events for an address; several listeners (an account's sessions) may share one. */
  subscribeDirect(address: string, listener: (event: DirectEvent) => void): Unsubscribe;

  /** Accounts and login sessions (identity), shared like everything else in the store. */
  readonly accounts: AccountStore;
  /** Private rooms and their members, shared like everything else in the store. */
  readonly acls: RoomAclStore;

  /** Presence: record that `nick` is (or is no longer) in `room`. */
  addMember(room: string, nick: string): Promise<void>;
  removeMember(room: string, nick: string): Promise<void>;
  /** Nicknames in a room, sorted case-insensitively. */
  members(room: string): Promise<string[]>;
  /** Number of members without listing them (large rooms); falls back to members().length. */
  memberCount?(room: string): Promise<number>;
  /**
   * Rooms with member counts. File store: rooms that have members or history. Redis: rooms with
   * live members (bounded, see RedisStoreOptions.maxRoomsListed), plus the default room.
   */
  rooms(): Promise<RoomCount[]>;
  /**
   * The chat core expired this empty, idle room (issue 16: bounded rooms): drop what is held in
   * memory for it. What is on disk or in Redis stays. Optional: a store without it keeps rooms.
   */
  evictRoom?(room: string): Promise<void>;

  /** Whether the store can serve requests right now (GET /healthz, `chat_store_up`). */
  health?(): Promise<StoreHealth>;

  /** Flush and release resources; appends after close reject. */
  close(): Promise<void>;
}

/** The routing key of a direct event. */
export function directAddress(event: DirectEvent): string {
  return (event.address ?? event.to).toLowerCase();
}

// The error classes live in errors.ts; re-exported here for the modules that import them from types.
export { StoreLimitError, StoreOutcomeUnknownError, StoreUnavailableError } from './errors.js';

/** Orders "<ms>-<seq>" ids numerically (a plain string compare breaks at digit-count changes). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = Number(am) - Number(bm);
  if (dm !== 0) return dm < 0 ? -1 : 1;
  const ds = Number(as) - Number(bs);
  return ds === 0 ? 0 : ds < 0 ? -1 : 1;
}

const ID_RE = /^\d{1,16}-\d{1,16}$/;
/** True for ids the stores hand out; used to validate client-supplied `after` values. */
export function isMessageId(value: string): boolean {
  return ID_RE.test(value);
}
