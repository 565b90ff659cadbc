import { randomBytes } from 'node:crypto';
import { RateLimiter } from '@net/security';
import type { AccountRecord, AccountStore, LoginSession } from '../store/accounts.js';
import { ChatError } from './errors.js';
import { checkPassword, dummyHash, hashPassword, verifyPassword } from './passwords.js';
import { checkNick } from './validate.js';

/**
 * Who may chat without an account:
 * - `on`: guests chat under names that start with the guest prefix (`guest-`), so nobody can
 *   mistake a guest for an account holder;
 * - `off`: every chat command needs a login (a connection may only /register and /login);
 * - `open`: the behaviour before accounts: guests pick any name that is not registered.
 */
export type GuestPolicy = 'on' | 'off' | 'open';

export const GUEST_PREFIX = 'guest-';

/** Signs and opens the tokens of login sessions (TokenSigner from @net/security in the server). */
export interface SessionTokenSigner {
  sign(claims: Record<string, unknown>, ttlSeconds: number): string;
  /** The claims of a well-signed, unexpired token, else undefined. */
  open(token: string): Record<string, unknown> | undefined;
}

export interface IdentityOptions {
  readonly accounts: AccountStore;
  /** @default 'open' (the server's default is 'on', see config.ts) */
  readonly guests?: GuestPolicy;
  /** Lifetime of a login session (and of its tokens). @default 43200000 (12 h) */
  readonly sessionTtlMs?: number;
  /** Login attempts per account: this many at once... @default 5 */
  readonly loginBurstPerAccount?: number;
  /** ...then one every this many seconds. @default 30 */
  readonly loginIntervalPerAccountS?: number;
  /** Login and register attempts per client address: this many at once... @default 20 */
  readonly loginBurstPerAddress?: number;
  /** ...then one every this many seconds. @default 3 */
  readonly loginIntervalPerAddressS?: number;
  /** Without it (tests), sessions get no tokens. */
  readonly tokens?: SessionTokenSigner;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A login that worked: the live session and a token bound to it. */
export interface LoginResult {
  readonly account: string;
  readonly session: LoginSession;
  readonly token: string | undefined;
}

const ACCOUNT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,23}$/;

/**
 * Account names: nickname rules (1-24 of letters, digits, _ . -), and never starting with
 * "guest" (case-insensitive): that prefix marks guests.
 */
export function checkAccountName(name: string): string {
  if (typeof name !== 'string' || !ACCOUNT_RE.test(name)) {
    throw new ChatError(
      'NICK_INVALID',
      'account name must be 1-24 characters: letters, digits, _ . - (not starting with . or -)',
    );
  }
  if (/^guest/i.test(name))
    throw new ChatError('NICK_INVALID', 'names starting with "guest" are kept for guests');
  return name;
}

/**
 * Accounts and login sessions: registration, password checks (scrypt, constant-time compare,
 * rate limited per account and per address), sessions bound to tokens, and revocation. The
 * state lives in the store (file or Redis); rate limits are per node.
 */
export class Identity {
  readonly guests: GuestPolicy;
  readonly sessionTtlMs: number;
  private readonly store: AccountStore;
  private readonly tokens: SessionTokenSigner | undefined;
  private readonly perAccount: RateLimiter;
  private readonly perAddress: RateLimiter;
  private readonly now: () => number;

  constructor(options: IdentityOptions) {
    this.store = options.accounts;
    this.guests = options.guests ?? 'open';
    this.sessionTtlMs = options.sessionTtlMs ?? 12 * 3600_000;
    this.tokens = options.tokens;
    this.now = options.now ?? Date.now;
    const burstA = options.loginBurstPerAccount ?? 5;
    const burstB = options.loginBurstPerAddress ?? 20;
    this.perAccount = new RateLimiter({
      capacity: burstA,
      refillPerSecond: 1 / (options.loginIntervalPerAccountS ?? 30),
      maxKeys: 100_000,
    });
    this.perAddress = new RateLimiter({
      capacity: burstB,
      refillPerSecond: 1 / (options.loginIntervalPerAddressS ?? 3),
      maxKeys: 100_000,
    });
  }

  /** The name a guest gets for `wanted` under the guest policy (prefixed when guests are `on`). */
  guestName(wanted: string): string {
    if (this.guests !== 'on' || wanted.toLowerCase().startsWith(GUEST_PREFIX)) return checkNick(wanted);
    return checkNick(`${GUEST_PREFIX}${wanted}`);
  }

  private limit(limiter: RateLimiter, key: string, what: string): void {
    if (limiter.take(key)) return;
    const wait = Math.max(1, Math.ceil(limiter.retryAfterMs(key) / 1000));
    throw new ChatError('RATE_LIMITED', `slow down: too many ${what}, try again in ${wait}s`);
  }

  /** Register a new account (the caller then logs it in). */
  async register(name: string, password: string, address = 'unknown'): Promise<AccountRecord> {
    checkAccountName(name);
    checkPassword(password);
    this.limit(this.perAddress, address, 'login attempts from your address');
    if (await this.store.getAccount(name)) throw accountExists(name);
    const record: AccountRecord = { name, hash: await hashPassword(password), created: this.now() };
    if (!(await this.store.createAccount(record))) throw accountExists(name);
    return record;
  }

  /**
   * Check a password. Unknown names cost the same scrypt work as wrong passwords, and both fail
   * with the same LOGIN_FAILED, so the answer does not tell which names exist (registration does).
   */
  async checkCredentials(name: string, password: string, address = 'unknown'): Promise<AccountRecord> {
    if (typeof name !== 'string' || !ACCOUNT_RE.test(name)) throw loginFailed();
    if (typeof password !== 'string' || password.length > 256) throw loginFailed();
    this.limit(this.perAddress, address, 'login attempts from your address');
    this.limit(this.perAccount, name.toLowerCase(), 'login attempts for this account');
    const record = await this.store.getAccount(name);
    const ok = await verifyPassword(password, record?.hash ?? (await dummyHash()));
    if (!record || !ok) throw loginFailed();
    return record;
  }

  /** Start a login session for an account whose password was checked. */
  async startSession(account: string): Promise<LoginResult> {
    const now = this.now();
    const session: LoginSession = {
      id: randomBytes(16).toString('base64url'),
      account,
      created: now,
      expires: now + this.sessionTtlMs,
    };
    await this.store.createSession(session);
    return { account, session, token: this.tokenFor(session) };
  }

  async login(name: string, password: string, address?: string): Promise<LoginResult> {
    const record = await this.checkCredentials(name, password, address);
    return this.startSession(record.name);
  }

  /** A token bound to the session, expiring with it. */
  tokenFor(session: LoginSession): string | undefined {
    const ttl = Math.max(1, Math.floor((session.expires - this.now()) / 1000));
    return this.tokens?.sign({ nick: session.account, ls: session.id }, ttl);
  }

  /** The live session, or SESSION_ENDED (logged out, revoked, expired). */
  async live(id: string): Promise<LoginSession> {
    const s = await this.store.getSession(id);
    if (!s || s.expires <= this.now()) throw sessionEnded();
    return s;
  }

  async logout(id: string): Promise<void> {
    await this.store.deleteSession(id);
  }

  /**
   * Change a password: every session of the account ends (on every node), and the caller gets a
   * fresh one.
   */
  async changePassword(
    account: string,
    oldPassword: string,
    newPassword: string,
    address?: string,
  ): Promise<LoginResult> {
    checkPassword(newPassword);
    await this.checkCredentials(account, oldPassword, address);
    if (!(await this.store.setPasswordHash(account, await hashPassword(newPassword)))) throw loginFailed();
    await this.store.deleteAccountSessions(account);
    return this.startSession(account);
  }

  /** Operator action: end every session of an account. Resolves with how many ended. */
  async revokeAccount(account: string): Promise<number> {
    return (await this.store.deleteAccountSessions(account)).length;
  }

  isRegistered(name: string): Promise<boolean> {
    return this.store.getAccount(name).then((a) => a !== undefined);
  }

  account(name: string): Promise<AccountRecord | undefined> {
    return this.store.getAccount(name);
  }

  onSessionsEnded(listener: (ids: string[]) => void): () => void {
    return this.store.onSessionsEnded(listener);
  }
}

function accountExists(name: string): ChatError {
  return new ChatError('ACCOUNT_EXISTS', `the name "${name}" is registered already`);
}

function loginFailed(): ChatError {
  return new ChatError('LOGIN_FAILED', 'wrong name or password');
}

export function sessionEnded(): ChatError {
  return new ChatError(
    'SESSION_ENDED',
    'your login session has ended (logged out, password changed, revoked or expired); log in again',
  );
}
