import type { Unsubscribe } from './types.js';

/** A registered account. `name` keeps the spelling it was registered with; lookups ignore case. */
export interface AccountRecord {
  readonly name: string;
  /** `scrypt$N$r$p$salt$key` (chat/passwords.ts). */
  readonly hash: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
}

/** A login session: what a token is bound to. Gone (deleted or expired) means every token of it is dead. */
export interface LoginSession {
  /** 128 random bits, base64url. */
  readonly id: string;
  /** The account's name as registered. */
  readonly account: string;
  readonly created: number;
  /** Milliseconds since the epoch; the session is dead from then on. */
  readonly expires: number;
}

/**
 * Accounts and login sessions, shared by every node that shares the store. Implemented by the
 * file store (a JSON file in the data directory) and the Redis store (keys with TTLs), so a login
 * on one node is live on all of them and a revocation on one ends it everywhere.
 */
export interface AccountStore {
  /** Store a new account; false when the name (case-insensitive) is registered already. */
  createAccount(record: AccountRecord): Promise<boolean>;
  getAccount(name: string): Promise<AccountRecord | undefined>;
  /** Replace the password hash; false when there is no such account. */
  setPasswordHash(name: string, hash: string): Promise<boolean>;
  createSession(session: LoginSession): Promise<void>;
  /** The session when it exists and has not expired. */
  getSession(id: string): Promise<LoginSession | undefined>;
  /** End one session; resolves with it when it existed. */
  deleteSession(id: string): Promise<LoginSession | undefined>;
  /** End every session of an account (password change, admin); resolves with their ids. */
  deleteAccountSessions(name: string): Promise<string[]>;
  /**
   * Sessions ended on any node (logout, password change, admin): connections holding one of them
   * are logged out at once rather than at their next command.
   */
  onSessionsEnded(listener: (ids: string[]) => void): Unsubscribe;
}

/** Limits shared by both implementations. */
export interface AccountLimits {
  /** Accounts stored at most; registering one more fails. @default 100000 */
  readonly maxAccounts?: number;
  /** Live sessions per account; a new login ends the oldest beyond this. @default 20 */
  readonly maxSessionsPerAccount?: number;
}

/** The store holds `maxAccounts` accounts already: nothing was stored. */
export class AccountLimitError extends Error {
  readonly code = 'ERR_STORE_ACCOUNT_LIMIT';
  constructor(max: number) {
    super(`no more accounts can be registered here (limit ${max})`);
    this.name = 'AccountLimitError';
  }
}
