import { randomInt } from 'node:crypto';
import type { Metrics } from '../metrics.js';
import { DEFAULT_ROOM } from '../protocol/frames.js';
import {
  type ChatStore,
  compareIds,
  type DirectEvent,
  isMessageId,
  type RoomCount,
  type RoomEvent,
  type StoredMessage,
  StoreLimitError,
  StoreOutcomeUnknownError,
  type Unsubscribe,
} from '../store/types.js';
import type { LoginSession } from '../store/accounts.js';
import { isMember } from '../store/room-acl.js';
import { ChatError } from './errors.js';
import {
  checkAccountName,
  GUEST_PREFIX,
  Identity,
  type IdentityOptions,
  type LoginResult,
} from './identity.js';
import { assertMayUse, createPrivate, invite, kick, notInvited, roomAcl } from './private-rooms.js';
import { JoinBucket } from './join-bucket.js';
import { type Clock, LruMap, TokenBucket } from './limits.js';
import { type RoomPage, RoomRegistry } from './rooms.js';
import { checkCid, checkNick, checkRoom, checkText } from './validate.js';

/** What a session's transport receives. `replay` marks history sent on join/resume. */
export type ChatEvent =
  | { readonly type: 'message'; readonly message: StoredMessage; readonly replay: boolean }
  | {
      readonly type: 'joined';
      readonly room: string;
      /** At most `maxMembersListed` nicknames; `count` is the real size. */
      readonly members: string[];
      readonly count: number;
      /** Set for a private room. */
      readonly private?: boolean;
    }
  | {
      readonly type: 'history-end';
      readonly room: string;
      readonly count: number;
      readonly truncated: boolean;
    }
  /** `by`: the owner of the private room who removed this connection's account from it. */
  | { readonly type: 'left'; readonly room: string; readonly by?: string }
  | { readonly type: 'join' | 'leave'; readonly room: string; readonly nick: string; readonly ts: number }
  | {
      readonly type: 'rename';
      readonly room: string;
      readonly from: string;
      readonly to: string;
      readonly ts: number;
    }
  | { readonly type: 'typing'; readonly room: string; readonly nick: string; readonly ts: number }
  | {
      readonly type: 'dm';
      readonly from: string;
      readonly to: string;
      readonly text: string;
      readonly ts: number;
    }
  | { readonly type: 'nick'; readonly nick: string }
  /**
   * The connection's identity changed: logged in (`account` set, with a token bound to the new
   * login session) or back to a guest (`account` undefined; `reason` says why: logout, session
   * ended elsewhere).
   */
  | {
      readonly type: 'identity';
      readonly nick: string;
      readonly account: string | undefined;
      readonly token?: string | undefined;
      readonly reason?: string;
    };

export type ChatSink = (event: ChatEvent) => void;

/** A per-connection admission check (a token bucket from @net/security in the server). */
export interface RateLimiter {
  /** Take one token; false when the connection must slow down. */
  tryTake(): boolean;
  /** Milliseconds until the next token, for the "slow down" notice. */
  retryAfterMs(): number;
  /** The connection is gone: forget its bucket. */
  release?(): void;
}

export interface ChatCoreOptions {
  /** Room every client starts in. @default 'lobby' */
  readonly defaultRoom?: string;
  /** Messages replayed on join when the client has no last id. @default 50 */
  readonly historyOnJoin?: number;
  /** Messages replayed at most on resume; more yields `truncated`. @default 1000 */
  readonly maxReplay?: number;
  /** Longest message in UTF-16 code units. @default 2000 */
  readonly maxMessageLength?: number;
  /** Rooms one connection may be in. @default 20 */
  readonly maxRoomsPerSession?: number;
  /** Builds a limiter per connection; without it nothing is rate limited. */
  readonly rateLimiter?: () => RateLimiter;
  /** Minimum gap between forwarded typing events of one session per room. @default 1000 */
  readonly typingIntervalMs?: number;
  readonly metrics?: Metrics;
  /**
   * Rooms larger than this do not announce joins and leaves: in a room of n members every join
   * costs n frames, so n joins cost n² (IRC's problem with big channels). @default 200
   */
  readonly presenceNoticeLimit?: number;
  /** Nicknames listed in the `joined` event; `who` lists all. @default 100 */
  readonly maxMembersListed?: number;
  /**
   * Joins of rooms one connection is not in yet: a token bucket of this size, refilled at
   * `joinsPerSecond`. Each such join may create a room in the store, so this bounds how fast one
   * connection can make the room list grow. @default 20
   */
  readonly joinBurst?: number;
  /** @default 1 */
  readonly joinsPerSecond?: number;
  /**
   * Store failures, with their detail (which clients never see: they get a generic
   * `STORE_FAILED`). The server logs them.
   */
  readonly onStoreError?: (what: string, err: unknown) => void;
  /** Rooms this node holds; creating one more is refused with ROOM_LIMIT. @default 1000 */
  readonly maxRooms?: number;
  /** An empty room without activity for this long is dropped from memory. @default 600000 (10 min) */
  readonly roomIdleMs?: number;
  /** Nick changes and `/token` issues per session: this many at once... @default 5 */
  readonly nickChangeBurst?: number;
  /** ...then one every this many milliseconds. @default 5000 */
  readonly nickChangeIntervalMs?: number;
  /** Join, leave and rename notices one session may cause: this many at once... @default 5 */
  readonly noticeBurst?: number;
  /** ...then one every this many milliseconds; the rest happen silently. @default 2000 */
  readonly noticeIntervalMs?: number;
  /** HTTP post limiters kept (least recently used dropped first). @default 10000 */
  readonly maxPostLimiters?: number;
  /** Clock for the limits above (tests). @default Date.now */
  readonly now?: Clock;
  /**
   * A member of a private room re-checks the room's access list in the store at most this often
   * while messages arrive, so a member whose kick event was lost (Redis pub/sub during a restart)
   * stops receiving the room within about this long. @default 5000
   */
  readonly privateRecheckMs?: number;
  /** Accounts, guests and login sessions (the accounts themselves live in the store). */
  readonly identity?: Omit<IdentityOptions, 'accounts'>;
}

/** Who posts over HTTP: the session that issued the token, and the client's address. */
export interface PostClient {
  readonly sid?: string;
  readonly address?: string;
  /** The account the token belongs to (login session tokens); guests have none. */
  readonly account?: string;
}

interface Membership {
  unsubscribe: Unsubscribe;
  /** Live events that arrived while history was being replayed; null once live. */
  buffer: RoomEvent[] | null;
  lastTyping: number;
  /** A private room: posting re-checks the ACL (a kick on another node may not have arrived). */
  private: boolean;
  /** When the ACL was last re-checked for delivery (private rooms). */
  checkedAt?: number;
}

/**
 * The transport-agnostic chat: every adapter (TCP lines, WebSocket JSON, HTTP API) turns its
 * wire format into calls on a {@link Session} and renders the {@link ChatEvent}s it receives.
 */
export class ChatCore {
  readonly store: ChatStore;
  readonly defaultRoom: string;
  readonly historyOnJoin: number;
  readonly maxReplay: number;
  readonly maxMessageLength: number;
  readonly maxRoomsPerSession: number;
  readonly typingIntervalMs: number;
  readonly metrics: Metrics | undefined;
  readonly presenceNoticeLimit: number;
  readonly maxMembersListed: number;
  readonly joinBurst: number;
  readonly joinsPerSecond: number;
  private readonly onStoreError: (what: string, err: unknown) => void;
  readonly nickChangeBurst: number;
  readonly nickChangeIntervalMs: number;
  readonly noticeBurst: number;
  readonly noticeIntervalMs: number;
  readonly now: Clock;
  readonly privateRecheckMs: number;
  /** @internal */
  readonly roomRegistry: RoomRegistry;
  private readonly limiterFactory: (() => RateLimiter) | undefined;
  private readonly sessions = new Set<Session>();
  private readonly expiryTimer: NodeJS.Timeout;
  private nextSession = 1;
  private closing = false;
  readonly identity: Identity;
  private readonly stopEnded: () => void;

  constructor(store: ChatStore, options: ChatCoreOptions = {}) {
    this.store = store;
    this.defaultRoom = checkRoom(options.defaultRoom ?? DEFAULT_ROOM);
    this.historyOnJoin = options.historyOnJoin ?? 50;
    this.maxReplay = options.maxReplay ?? 1000;
    this.maxMessageLength = options.maxMessageLength ?? 2000;
    this.maxRoomsPerSession = options.maxRoomsPerSession ?? 20;
    this.typingIntervalMs = options.typingIntervalMs ?? 1000;
    this.limiterFactory = options.rateLimiter;
    this.metrics = options.metrics;
    this.presenceNoticeLimit = options.presenceNoticeLimit ?? 200;
    this.maxMembersListed = options.maxMembersListed ?? 100;
    this.joinBurst = options.joinBurst ?? 20;
    this.joinsPerSecond = options.joinsPerSecond ?? 1;
    this.onStoreError = options.onStoreError ?? (() => {});
    this.nickChangeBurst = options.nickChangeBurst ?? 5;
    this.nickChangeIntervalMs = options.nickChangeIntervalMs ?? 5000;
    this.noticeBurst = options.noticeBurst ?? 5;
    this.noticeIntervalMs = options.noticeIntervalMs ?? 2000;
    this.now = options.now ?? Date.now;
    this.privateRecheckMs = options.privateRecheckMs ?? 5000;
    const roomIdleMs = options.roomIdleMs ?? 600_000;
    this.roomRegistry = new RoomRegistry(
      store,
      this.defaultRoom,
      options.maxRooms ?? 1000,
      roomIdleMs,
      this.now,
    );
    this.postLimiters = new LruMap(options.maxPostLimiters ?? 10_000, (_k, limiter) => limiter.release?.());
    this.expiryTimer = setInterval(
      () => void this.expireIdleRooms().catch(() => {}),
      Math.max(1000, Math.min(roomIdleMs, 60_000)),
    );
    this.expiryTimer.unref();
    this.identity = new Identity({ ...options.identity, accounts: store.accounts });
    // A session ended anywhere (logout, password change, admin; any node): its connections here
    // become guests now, not at their next command.
    this.stopEnded = this.identity.onSessionsEnded((ids) => {
      const ended = new Set(ids);
      for (const s of this.sessions) {
        const id = s.loginSession?.id;
        if (id !== undefined && ended.has(id)) s.loginEnded();
      }
    });
  }

  /**
   * The principal room ACLs are keyed by: the account a connection is logged in as, undefined for
   * guests. The one place that answers "who is this" for authorisation.
   */
  principal(who: { readonly account?: string | undefined }): string | undefined {
    return who.account;
  }

  /** A fresh guest nickname: `guest-12345` (guests on/off) or `guest12345` (open, as before accounts). */
  private guestNick(): string {
    const sep = this.identity.guests === 'open' ? '' : GUEST_PREFIX.slice(5);
    return `guest${sep}${randomInt(1000, 100000)}`;
  }

  /**
   * Claim a guest nickname for a connection: prefixed under guests `on`, and never a registered
   * name (the claim comes first, so a registration racing with it sees the name taken).
   * @internal
   */
  async claimGuestNick(wanted: string | undefined, owner: string): Promise<string | undefined> {
    if (wanted === undefined) {
      for (let i = 0; i < 50; i++) {
        const guest = this.guestNick();
        if (await this.store.claimNick(guest, owner)) return guest;
      }
      return undefined;
    }
    const nick = this.identity.guestName(wanted);
    if (!(await this.store.claimNick(nick, owner))) throw nickTaken(nick);
    if (await this.identity.isRegistered(nick)) {
      await this.store.releaseNick(nick, owner);
      throw new ChatError(
        'NAME_REGISTERED',
        `"${nick}" is a registered name: /login ${nick} PASSWORD if it is yours`,
      );
    }
    return nick;
  }

  /**
   * What a client may be told about a failure: a ChatError as it is; a store's outcome-unknown
   * timeout as OUTCOME_UNKNOWN; anything else (Redis error replies name scripts and internals) as
   * a generic STORE_FAILED, with the detail going to the log only.
   */
  clientError(err: unknown, what = 'request'): ChatError {
    if (err instanceof ChatError) return err;
    if (err instanceof StoreLimitError) return new ChatError('ROOM_LIMIT', err.message);
    this.onStoreError(what, err);
    if (err instanceof StoreOutcomeUnknownError) {
      return new ChatError(
        'OUTCOME_UNKNOWN',
        'the store did not confirm in time: the message may or may not be stored; resend it with the same cid',
      );
    }
    return new ChatError(
      'STORE_FAILED',
      what === 'append'
        ? 'message not stored: the chat store is unavailable, retry (with the same cid)'
        : 'the chat store is unavailable, retry later',
    );
  }

  /** Drop empty rooms idle longer than `roomIdleMs` (also runs on a timer); returns their names. */
  expireIdleRooms(): Promise<string[]> {
    return this.roomRegistry.expireIdle();
  }

  /** One page of the room list ordered by name; `limit` is clamped to 1..1000. */
  async roomPage(options: { after?: string; limit?: number; principal?: string } = {}): Promise<RoomPage> {
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? 100), 1), 1000);
    const page = await this.roomRegistry.page(options.after, limit);
    // Private rooms the caller is not in are left out (a page may come out shorter; `next` stays).
    const rooms = await this.visibleRooms(page.rooms, options.principal);
    return rooms === page.rooms ? page : { ...page, rooms };
  }

  /** @internal */
  async memberCount(room: string): Promise<number> {
    const store = this.store;
    return store.memberCount ? store.memberCount(room) : (await store.members(room)).length;
  }

  /** @internal Whether join/leave notices are sent in this room (small rooms only). */
  async announcesPresence(room: string): Promise<boolean> {
    return (await this.memberCount(room)) <= this.presenceNoticeLimit;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Open a session for a new connection. It gets a free guest nickname, or `nick` when given and
   * free (a taken or invalid `nick` rejects with NICK_TAKEN / NICK_INVALID and no session).
   */
  async connect(transport: string, sink: ChatSink, nick?: string): Promise<Session> {
    if (this.closing) throw new ChatError('SHUTTING_DOWN', 'server is shutting down');
    const id = `${process.pid}:${this.nextSession++}`;
    let chosen: string | undefined;
    try {
      chosen = await this.claimGuestNick(nick, id);
      if (!chosen) throw new ChatError('NICK_TAKEN', 'no free guest nickname, pick one with a nick');
    } catch (err) {
      throw this.clientError(err, 'connect');
    }
    if (this.closing) {
      // shutdown() already closed every session; this one must not outlive it.
      await this.store.releaseNick(chosen, id).catch(() => {});
      throw new ChatError('SHUTTING_DOWN', 'server is shutting down');
    }
    const limiter = this.limiterFactory?.();
    const session = new Session(this, id, transport, chosen, sink, limiter);
    this.sessions.add(session);
    return session;
  }

  /** @internal */
  forget(session: Session): void {
    this.sessions.delete(session);
  }

  /** The room list; private rooms only for their members (`principal`, see {@link principal}). */
  async rooms(principal?: string): Promise<RoomCount[]> {
    try {
      return await this.visibleRooms(await this.store.rooms(), principal);
    } catch (err) {
      throw this.clientError(err, 'rooms');
    }
  }

  private async visibleRooms<T extends { room: string }>(
    list: T[],
    principal: string | undefined,
  ): Promise<T[]> {
    const acls = await this.store.acls.getMany(list.map((r) => r.room));
    return acls.size === 0 ? list : list.filter((r) => isMember(acls.get(r.room), principal));
  }

  /** A room's messages (HTTP API); a private room's only for a member (`principal`). */
  async history(room: string, after: string | undefined, limit: number, principal?: string) {
    const name = checkRoom(room);
    if (after !== undefined && !isMessageId(after)) throw new ChatError('BAD_ID', 'after must be an id');
    await assertMayUse(this, name, principal);
    try {
      return await this.store.read(name, { after, limit: Math.min(Math.max(limit, 0), this.maxReplay) });
    } catch (err) {
      throw this.clientError(err, 'history');
    }
  }

  private readonly postLimiters: LruMap<string, RateLimiter>;

  private postLimiter(key: string): RateLimiter {
    let limiter = this.postLimiters.get(key);
    if (!limiter) {
      limiter = this.limiterFactory!();
      this.postLimiters.set(key, limiter);
    }
    return limiter;
  }

  /**
   * Post without a live connection (HTTP API). The caller has authenticated `nick` (signed token).
   * Rate limited per issuing session and per client address, never per nickname (nicknames are
   * free to change); the limiter table is an LRU, so a flood of keys cannot grow it or reset it.
   */
  async post(
    transport: string,
    nick: string,
    room: string,
    text: string,
    cid?: string,
    client: PostClient = {},
  ): Promise<StoredMessage> {
    if (this.closing) throw new ChatError('SHUTTING_DOWN', 'server is shutting down');
    checkNick(nick);
    const name = checkRoom(room);
    const stored = checkText(text, this.maxMessageLength);
    if (cid !== undefined) checkCid(cid);
    if (this.limiterFactory) {
      const address = client.address ?? 'unknown';
      // Both must have a token: the session's bucket, and the address's (tokens outlive sessions).
      const keys = [`a:${address}`, ...(client.sid === undefined ? [] : [`s:${client.sid}`])];
      const limiters = keys.map((k) => this.postLimiter(k));
      if (!limiters.every((l) => l.tryTake())) {
        this.metrics?.rejectedInput(transport, 'rate_limited');
        throw new ChatError('RATE_LIMITED', 'slow down: too many messages');
      }
    }
    await assertMayUse(this, name, this.principal(client));
    await this.roomRegistry.admit(name);
    this.metrics?.messageIn(transport);
    return storeAppend(this, name, nick, stored, cid);
  }

  /** Stop accepting sessions and close every open one (leave notices, nick release). */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.stopEnded();
    clearInterval(this.expiryTimer);
    await Promise.allSettled([...this.sessions].map((s) => s.close()));
  }
}

async function storeAppend(
  core: ChatCore,
  room: string,
  nick: string,
  text: string,
  cid: string | undefined,
): Promise<StoredMessage> {
  try {
    return await core.store.append(room, nick, text, cid === undefined ? undefined : { clientId: cid });
  } catch (err) {
    throw core.clientError(err, 'append');
  }
}

/** Direct-message addresses: an account (all its sessions) or a guest nickname (one connection). */
export function accountAddress(account: string): string {
  return `a:${account.toLowerCase()}`;
}
export function guestAddress(nick: string): string {
  return `n:${nick.toLowerCase()}`;
}

function alreadyLoggedIn(account: string): ChatError {
  return new ChatError('ALREADY_LOGGED_IN', `you are logged in as ${account} already (/logout first)`);
}

function nickTaken(nick: string): ChatError {
  return new ChatError('NICK_TAKEN', `nickname "${nick}" is taken, choose another`);
}

export class Session {
  readonly id: string;
  readonly transport: string;
  private currentNick: string;
  private readonly core: ChatCore;
  private readonly sink: ChatSink;
  private readonly limiter: RateLimiter | undefined;
  /** Nick changes and token issues. */
  private readonly control: TokenBucket;
  /** Join, leave and rename notices this session causes. */
  private readonly notices: TokenBucket;
  private readonly memberships = new Map<string, Membership>();
  private unsubscribeDirect: Unsubscribe;
  private loginState: LoginSession | undefined;
  /** A password change of this connection is running: the end of its old session is expected. */
  private renewing = false;
  private closed = false;
  /** The one close in progress: every caller waits for the same leave/release work. */
  private closing: Promise<void> | undefined;

  constructor(
    core: ChatCore,
    id: string,
    transport: string,
    nick: string,
    sink: ChatSink,
    limiter: RateLimiter | undefined,
  ) {
    this.core = core;
    this.id = id;
    this.transport = transport;
    this.currentNick = nick;
    this.sink = sink;
    this.limiter = limiter;
    this.control = new TokenBucket(core.nickChangeBurst, core.nickChangeIntervalMs, core.now);
    this.notices = new TokenBucket(core.noticeBurst, core.noticeIntervalMs, core.now);
    this.unsubscribeDirect = core.store.subscribeDirect(guestAddress(nick), this.onDirect);
  }

  /** The account this connection is logged in as; undefined for a guest. */
  get account(): string | undefined {
    return this.loginState?.account;
  }

  /** The live login session (what tokens of this connection are bound to). */
  get loginSession(): LoginSession | undefined {
    return this.loginState;
  }

  /**
   * Every command of a logged-in connection checks its login session in the store first: one
   * ended on another node (logout, password change, admin) turns this connection into a guest and
   * the command fails with SESSION_ENDED. Guests under `--guests off` get LOGIN_REQUIRED.
   */
  async checkLive(): Promise<void> {
    this.assertOpen();
    const login = this.loginState;
    if (login) {
      try {
        await this.core.identity.live(login.id);
      } catch (err) {
        if (this.loginState === login) await this.becomeGuest('your login session has ended');
        throw err;
      }
      return;
    }
    if (this.core.identity.guests === 'off') {
      throw new ChatError(
        'LOGIN_REQUIRED',
        'this server needs an account: /register NAME PASSWORD or /login NAME PASSWORD',
      );
    }
  }

  /** Register an account under `name` and log this connection in as it. */
  async register(name: string, password: string, address?: string): Promise<LoginResult> {
    this.assertOpen();
    if (this.loginState) throw alreadyLoggedIn(this.loginState.account);
    checkAccountName(name); // before the claim: no store key for a name that can never be an account
    this.takeControl();
    const store = this.core.store;
    // Holding the name while registering: a guest cannot take it meanwhile (open guests).
    if (!(await store.claimNick(name, this.id))) throw nickTaken(name);
    let result: LoginResult;
    try {
      const record = await this.core.identity.register(name, password, address);
      result = await this.core.identity.startSession(record.name);
    } catch (err) {
      if (name.toLowerCase() !== this.currentNick.toLowerCase()) await store.releaseNick(name, this.id);
      throw err;
    }
    await this.becomeAccount(result);
    await store.releaseNick(name, this.id);
    return result;
  }

  async login(name: string, password: string, address?: string): Promise<LoginResult> {
    this.assertOpen();
    if (this.loginState) throw alreadyLoggedIn(this.loginState.account);
    const result = await this.core.identity.login(name, password, address);
    await this.becomeAccount(result);
    return result;
  }

  /** Continue a live login session (a reconnecting page presents its login token). */
  async adopt(login: LoginSession): Promise<LoginResult> {
    this.assertOpen();
    if (this.loginState) throw alreadyLoggedIn(this.loginState.account);
    const live = await this.core.identity.live(login.id);
    const result: LoginResult = {
      account: live.account,
      session: live,
      token: this.core.identity.tokenFor(live),
    };
    await this.becomeAccount(result);
    return result;
  }

  /** End this connection's login session (its tokens die with it) and continue as a guest. */
  async logout(): Promise<void> {
    this.assertOpen();
    const login = this.loginState;
    if (!login) throw new ChatError('NOT_LOGGED_IN', 'you are not logged in');
    // Cleared first: the "session ended" notice of this very logout is not handled a second time.
    this.loginState = undefined;
    try {
      await this.core.identity.logout(login.id);
    } catch (err) {
      this.loginState ??= login;
      throw err;
    }
    await this.becomeGuest('logged out');
  }

  /** New password: every session of the account ends; this connection continues in a new one. */
  async changePassword(oldPassword: string, newPassword: string, address?: string): Promise<LoginResult> {
    await this.checkLive();
    const login = this.loginState;
    if (!login) throw new ChatError('NOT_LOGGED_IN', 'log in first: /login NAME PASSWORD');
    // This connection's own session ends with the others; it continues in the new one.
    this.renewing = true;
    let result: LoginResult;
    try {
      result = await this.core.identity.changePassword(login.account, oldPassword, newPassword, address);
    } finally {
      this.renewing = false;
    }
    this.loginState = result.session;
    this.sink({ type: 'identity', nick: this.currentNick, account: result.account, token: result.token });
    return result;
  }

  /** @internal The login session ended elsewhere: continue as a guest. */
  loginEnded(): void {
    if (this.closed || !this.loginState || this.renewing) return;
    void this.becomeGuest('your login session has ended').catch(() => {});
  }

  private async becomeAccount(result: LoginResult): Promise<void> {
    this.loginState = result.session;
    await this.rename(result.account, false);
    this.unsubscribeDirect();
    this.unsubscribeDirect = this.core.store.subscribeDirect(accountAddress(result.account), this.onDirect);
    this.sink({ type: 'identity', nick: this.currentNick, account: result.account, token: result.token });
  }

  private async becomeGuest(reason: string): Promise<void> {
    this.loginState = undefined;
    if (this.closed) return;
    // Private rooms are for accounts: a connection that is no longer one is out of them.
    await this.leavePrivateRooms();
    const store = this.core.store;
    this.unsubscribeDirect();
    this.unsubscribeDirect = () => {};
    if (this.core.identity.guests === 'off') {
      // No chatting without an account: a logged-out connection hears nothing more.
      for (const [room, membership] of [...this.memberships]) {
        await this.dropMembership(room, membership).catch(() => {});
        this.sink({ type: 'left', room });
      }
    }
    const guest = await this.core.claimGuestNick(undefined, this.id);
    if (guest === undefined) throw new ChatError('NICK_TAKEN', 'no free guest nickname');
    await this.rename(guest, true);
    this.unsubscribeDirect = store.subscribeDirect(guestAddress(guest), this.onDirect);
    this.sink({ type: 'identity', nick: this.currentNick, account: undefined, reason });
  }

  /**
   * Move presence from the current name to `nick` in every room, with one rename notice per room
   * (within the notice allowance). `claimed`: the new name is a claimed guest nickname (an account
   * name is reserved by its account, never claimed).
   */
  private async rename(nick: string, claimed: boolean): Promise<void> {
    const old = this.currentNick;
    if (nick === old) return;
    const store = this.core.store;
    if (nick.toLowerCase() !== old.toLowerCase() || !claimed) await store.releaseNick(old, this.id);
    this.currentNick = nick;
    const ts = Date.now();
    const allowed = this.notices.take();
    for (const room of this.memberships.keys()) {
      await store.removeMember(room, old);
      await store.addMember(room, nick);
      if (allowed && (await this.core.announcesPresence(room))) {
        await store.publish({ kind: 'rename', room, from: old, to: nick, ts });
      }
    }
  }

  /**
   * Spend one nick-change / token-issue allowance (RATE_LIMITED when none is left): a fresh
   * nickname or token must not buy a fresh message budget.
   */
  takeControl(): void {
    if (this.control.take()) return;
    this.core.metrics?.rejectedInput(this.transport, 'rate_limited');
    const wait = Math.max(1, Math.ceil(this.control.retryAfterMs() / 1000));
    throw new ChatError(
      'RATE_LIMITED',
      `slow down: too many nickname or token changes, try again in ${wait}s`,
    );
  }

  /** Whether this session may cause another presence notice now (the action happens anyway). */
  private async announce(room: string): Promise<boolean> {
    return (await this.core.announcesPresence(room)) && this.notices.take();
  }

  get nick(): string {
    return this.currentNick;
  }

  get rooms(): string[] {
    return [...this.memberships.keys()];
  }

  inRoom(room: string): boolean {
    return this.memberships.has(room);
  }

  private readonly onDirect = (event: DirectEvent): void => {
    if (!this.closed)
      this.sink({ type: 'dm', from: event.from, to: event.to, text: event.text, ts: event.ts });
  };

  /**
   * A guest's new nickname (prefixed under guests `on`, never a registered name). A logged-in
   * connection's name is its account: ALREADY_LOGGED_IN.
   */
  async setNick(wanted: string): Promise<void> {
    await this.checkLive();
    if (this.loginState) {
      throw new ChatError(
        'ALREADY_LOGGED_IN',
        `you are logged in as ${this.loginState.account}; your name is your account (/logout to chat as a guest)`,
      );
    }
    checkNick(wanted);
    const nick = this.core.identity.guestName(wanted);
    const old = this.currentNick;
    if (nick === old) return;
    this.takeControl();
    const store = this.core.store;
    // A case-only change keeps the claim (same key, same owner).
    const claimed = await this.core.claimGuestNick(wanted, this.id);
    if (claimed === undefined) throw nickTaken(nick);
    this.unsubscribeDirect();
    this.unsubscribeDirect = store.subscribeDirect(guestAddress(nick), this.onDirect);
    // One notice allowance per rename, whatever the number of rooms; big rooms get none.
    await this.rename(nick, true);
    this.sink({ type: 'nick', nick });
  }

  /**
   * Join a room and replay history: the messages after `after` when resuming (up to maxReplay),
   * else the newest `historyOnJoin`. Live messages arriving meanwhile are held back and sent after
   * the replay without duplicates, so a resuming client sees no gap and no repeat.
   */
  async join(room: string, after?: string): Promise<string> {
    await this.checkLive();
    const name = checkRoom(room);
    if (after !== undefined && !isMessageId(after)) throw new ChatError('BAD_ID', 'after must be an id');
    const store = this.core.store;
    let membership = this.memberships.get(name);
    const created = !membership;
    if (!membership) {
      if (this.memberships.size >= this.core.maxRoomsPerSession) {
        throw new ChatError('TOO_MANY_ROOMS', `at most ${this.core.maxRoomsPerSession} rooms per connection`);
      }
      this.takeJoinToken();
      const acl = await assertMayUse(this.core, name, this.core.principal(this));
      await this.core.roomRegistry.admit(name);
      membership = {
        unsubscribe: () => {},
        buffer: [],
        lastTyping: 0,
        private: acl !== undefined,
        checkedAt: this.core.now(),
      };
      const m = membership;
      m.unsubscribe = store.subscribe(name, (event) => this.onRoomEvent(name, m, event));
      this.memberships.set(name, m);
    } else {
      // Already a member (e.g. a resume request): replay again, holding live events meanwhile.
      membership.buffer ??= [];
    }
    const m = membership;
    try {
      if (created) {
        await store.addMember(name, this.currentNick);
        this.assertOpen();
        if (await this.announce(name)) {
          await store.publish({ kind: 'join', room: name, nick: this.currentNick, ts: Date.now() });
        }
      }
      const count = await this.core.memberCount(name);
      const members = count <= this.core.maxMembersListed ? await store.members(name) : [this.currentNick];
      this.assertOpen();
      this.sink({ type: 'joined', room: name, members, count, ...(m.private ? { private: true } : {}) });
      const limit = after === undefined ? this.core.historyOnJoin : this.core.maxReplay;
      const { messages, truncated } = await store.read(name, { after, limit });
      this.assertOpen();
      let last = after;
      for (const message of messages) {
        this.sink({ type: 'message', message, replay: true });
        last = message.id;
      }
      this.sink({ type: 'history-end', room: name, count: messages.length, truncated });
      const held = m.buffer ?? [];
      m.buffer = null;
      for (const event of held) {
        if (event.kind === 'message' && last !== undefined && compareIds(event.message.id, last) <= 0)
          continue;
        this.deliver(event);
      }
      return name;
    } catch (err) {
      // No half-membership: a join that failed (store refused or unreachable, or the connection
      // closed meanwhile) leaves no presence entry, no local entry and no subscription behind.
      if (created && this.memberships.get(name) === m) {
        this.memberships.delete(name);
        m.unsubscribe();
        await store.removeMember(name, this.currentNick).catch(() => {});
      } else if (!created && m.buffer) {
        // A failed resume of a room we stay in: release what was held back instead of growing it.
        const held = m.buffer;
        m.buffer = null;
        for (const event of held) this.deliver(event);
      }
      throw this.core.clientError(err, 'join');
    }
  }

  async leave(room: string): Promise<void> {
    await this.checkLive();
    const name = checkRoom(room);
    const membership = this.memberships.get(name);
    if (!membership) throw new ChatError('NOT_IN_ROOM', `you are not in #${name}`);
    await this.dropMembership(name, membership);
    this.sink({ type: 'left', room: name });
  }

  private async dropMembership(room: string, membership: Membership): Promise<void> {
    this.memberships.delete(room);
    const store = this.core.store;
    await store.removeMember(room, this.currentNick);
    this.core.roomRegistry.touch(room);
    if (await this.announce(room)) {
      await store.publish({ kind: 'leave', room, nick: this.currentNick, ts: Date.now() });
    }
    membership.unsubscribe();
  }

  /**
   * Post to a room; resolves with the stored message once it is durable (that is the ack).
   * `cid` is the client's id for this message: a resend with the same cid (after a reconnect or
   * a STORE_FAILED) resolves with the message stored first instead of storing it again.
   */
  async say(room: string, text: string, cid?: string): Promise<StoredMessage> {
    await this.checkLive();
    const name = checkRoom(room);
    const membership = this.memberships.get(name);
    if (!membership) throw new ChatError('NOT_IN_ROOM', `you are not in #${name}`);
    const stored = checkText(text, this.core.maxMessageLength);
    if (cid !== undefined) checkCid(cid);
    if (membership.private) await this.assertStillMember(name, membership);
    this.takeToken();
    this.core.roomRegistry.touch(name);
    this.core.metrics?.messageIn(this.transport);
    return storeAppend(this.core, name, this.currentNick, stored, cid);
  }

  /**
   * A direct message: to a registered name it goes to every session of that account (on any node)
   * and to nobody else; to a guest name, to the guest connection holding it.
   */
  async dm(to: string, text: string): Promise<void> {
    await this.checkLive();
    checkNick(to);
    const stored = checkText(text, this.core.maxMessageLength);
    this.takeToken();
    this.core.metrics?.messageIn(this.transport);
    const account = await this.core.identity.account(to);
    const event: DirectEvent = {
      kind: 'dm',
      from: this.currentNick,
      to: account?.name ?? to,
      address: account ? accountAddress(account.name) : guestAddress(to),
      text: stored,
      ts: Date.now(),
    };
    if (!(await this.core.store.sendDirect(event))) {
      throw new ChatError('NO_SUCH_NICK', `nobody called "${to}" is online`);
    }
  }

  /** Typing indicator: forwarded at most once per typingIntervalMs per room, never an error. */
  async typing(room: string): Promise<void> {
    await this.checkLive();
    const name = checkRoom(room);
    const membership = this.memberships.get(name);
    if (!membership) throw new ChatError('NOT_IN_ROOM', `you are not in #${name}`);
    const now = Date.now();
    if (now - membership.lastTyping < this.core.typingIntervalMs) return;
    membership.lastTyping = now;
    await this.core.store.publish({ kind: 'typing', room: name, nick: this.currentNick, ts: now });
  }

  async who(room: string): Promise<string[]> {
    await this.checkLive();
    const name = checkRoom(room);
    await assertMayUse(this.core, name, this.core.principal(this));
    return this.core.store.members(name);
  }

  /**
   * `/create ROOM [private]`: a public room is simply joined; a private one is created (new
   * rooms only, logged-in accounts only) with this account as owner and only member, then joined.
   */
  async create(room: string, isPrivate: boolean): Promise<string> {
    await this.checkLive();
    if (isPrivate) await createPrivate(this.core, room, this.core.principal(this));
    return this.join(room);
  }

  /** `/invite NAME`: the owner of a private room adds an account to it; resolves with its name. */
  async invite(room: string, name: string): Promise<string> {
    await this.checkLive();
    this.takeToken(); // each one is a store write: it costs like a message
    const account = await invite(this.core, room, this.core.principal(this), name);
    // Best effort: the account hears of it if it is online anywhere.
    await this.core.store
      .sendDirect({
        kind: 'dm',
        from: this.currentNick,
        to: account,
        address: accountAddress(account),
        text: `invited you to #${checkRoom(room)} (/join ${checkRoom(room)})`,
        ts: Date.now(),
      })
      .catch(() => false);
    return account;
  }

  /** `/kick NAME`: the owner removes an account from a private room; its connections leave it. */
  async kick(room: string, name: string): Promise<string> {
    await this.checkLive();
    this.takeToken();
    return kick(this.core, room, this.core.principal(this), this.currentNick, name);
  }

  /** A kicked member whose kick event has not arrived (yet): leave now instead of posting. */
  private async assertStillMember(room: string, membership: Membership): Promise<void> {
    const acl = await roomAcl(this.core, room);
    if (isMember(acl, this.core.principal(this))) return;
    if (this.memberships.get(room) === membership) {
      await this.dropMembership(room, membership).catch(() => {});
      this.sink({ type: 'left', room });
    }
    throw notInvited(room);
  }

  /** Leave every private room (the principal changed: logout, session ended). */
  private async leavePrivateRooms(): Promise<void> {
    for (const [room, membership] of [...this.memberships]) {
      if (!membership.private) continue;
      await this.dropMembership(room, membership).catch(() => {});
      this.sink({ type: 'left', room });
    }
  }

  /**
   * Leave every room and release the nickname. Idempotent: later calls get the first call's
   * promise, so a shutdown that closes a session the transport is already closing still waits
   * until the session has really left (and only then closes the store).
   */
  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private async finish(): Promise<void> {
    this.closed = true;
    this.unsubscribeDirect();
    const store = this.core.store;
    for (const [room, membership] of [...this.memberships]) {
      await this.dropMembership(room, membership).catch(() => {});
    }
    await store.releaseNick(this.currentNick, this.id).catch(() => {});
    this.limiter?.release?.();
    this.core.forget(this);
  }

  private joinBucket: JoinBucket | undefined;

  private takeJoinToken(): void {
    const now = Date.now();
    this.joinBucket ??= new JoinBucket(this.core.joinBurst, this.core.joinsPerSecond, now);
    const taken = this.joinBucket.take(now);
    if (taken === true) return;
    this.core.metrics?.rejectedInput(this.transport, 'join_rate_limited');
    throw new ChatError('RATE_LIMITED', `slow down: too many joins, try again in ${taken}s`);
  }

  private takeToken(): void {
    if (!this.limiter || this.limiter.tryTake()) return;
    this.core.metrics?.rejectedInput(this.transport, 'rate_limited');
    const wait = Math.max(1, Math.ceil(this.limiter.retryAfterMs() / 100) / 10);
    throw new ChatError('RATE_LIMITED', `slow down: too many messages, try again in ${wait}s`);
  }

  private assertOpen(): void {
    if (this.closed) throw new ChatError('SHUTTING_DOWN', 'connection is closing');
  }

  private onRoomEvent(room: string, membership: Membership, event: RoomEvent): void {
    if (this.closed || this.memberships.get(room) !== membership) return;
    if (membership.private && event.kind === 'message') this.recheck(room, membership);
    if (membership.buffer) membership.buffer.push(event);
    else this.deliver(event);
  }

  /**
   * Now and then while a private room's messages arrive: is this connection still a member? A
   * kick normally arrives as an event; this bounds how long a lost one leaves a kicked member
   * listening.
   */
  private recheck(room: string, membership: Membership): void {
    const now = this.core.now();
    if (membership.checkedAt !== undefined && now - membership.checkedAt < this.core.privateRecheckMs) return;
    membership.checkedAt = now;
    void this.core.store.acls.get(room).then(
      async (acl) => {
        if (isMember(acl, this.core.principal(this)) || this.memberships.get(room) !== membership) return;
        await this.dropMembership(room, membership).catch(() => {});
        this.sink({ type: 'left', room });
      },
      () => {
        membership.checkedAt = undefined; // store away: try again with the next message
      },
    );
  }

  private deliver(event: RoomEvent): void {
    switch (event.kind) {
      case 'message':
        this.sink({ type: 'message', message: event.message, replay: false });
        break;
      case 'typing':
        if (event.nick !== this.currentNick)
          this.sink({ type: 'typing', room: event.room, nick: event.nick, ts: event.ts });
        break;
      case 'rename':
        this.sink({ type: 'rename', room: event.room, from: event.from, to: event.to, ts: event.ts });
        break;
      case 'kick': {
        if (this.core.principal(this)?.toLowerCase() !== event.principal) break;
        const membership = this.memberships.get(event.room);
        if (!membership) break;
        void this.dropMembership(event.room, membership)
          .catch(() => {})
          .then(() => this.sink({ type: 'left', room: event.room, by: event.by }));
        break;
      }
      default:
        this.sink({ type: event.kind, room: event.room, nick: event.nick, ts: event.ts });
    }
  }
}
