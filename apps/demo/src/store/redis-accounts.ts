import {
  type AccountLimits,
  AccountLimitError,
  type AccountRecord,
  type AccountStore,
  type LoginSession,
} from './accounts.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import type { Unsubscribe } from './types.js';

export interface RedisAccountsOptions extends AccountLimits {
  readonly keys: RedisKeys;
  /** Command connection. */
  readonly link: RedisLink;
  /** Subscriber connection (pub/sub of ended sessions). */
  readonly sub: RedisLink;
  /** How long an operation waits for Redis to come back. */
  readonly waitMs: number;
  readonly onWarning: (message: string) => void;
}

function parse<T>(reply: unknown): T | undefined {
  if (typeof reply !== 'string') return undefined;
  try {
    return JSON.parse(reply) as T;
  } catch {
    return undefined;
  }
}

/**
 * Accounts and login sessions in Redis, shared by every node: an account is a plain key (SET NX
 * makes registration atomic across nodes), a session a key with the session's own expiry (PX), and
 * an account's session ids a set used to end them all. Ended sessions are announced on a channel
 * so every node logs out its connections at once.
 */
export class RedisAccounts implements AccountStore {
  private readonly o: RedisAccountsOptions;
  private readonly maxAccounts: number;
  private readonly maxSessions: number;
  private readonly listeners = new Set<(ids: string[]) => void>();
  private subscribed = false;

  constructor(options: RedisAccountsOptions) {
    this.o = options;
    this.maxAccounts = options.maxAccounts ?? 100_000;
    this.maxSessions = options.maxSessionsPerAccount ?? 20;
  }

  private deadline(): number {
    return Date.now() + this.o.waitMs;
  }

  private get countKey(): string {
    return `${this.o.keys.prefix}account-count`;
  }

  async createAccount(record: AccountRecord): Promise<boolean> {
    const d = this.deadline();
    const count = Number(await this.o.link.call(['GET', this.countKey], d));
    if (count >= this.maxAccounts) throw new AccountLimitError(this.maxAccounts);
    const ok = await this.o.link.call(
      ['SET', this.o.keys.account(record.name), JSON.stringify(record), 'NX'],
      d,
    );
    if (ok !== 'OK') return false;
    await this.o.link.call(['INCR', this.countKey], d);
    return true;
  }

  async getAccount(name: string): Promise<AccountRecord | undefined> {
    return parse<AccountRecord>(await this.o.link.call(['GET', this.o.keys.account(name)], this.deadline()));
  }

  async setPasswordHash(name: string, hash: string): Promise<boolean> {
    const old = await this.getAccount(name);
    if (!old) return false;
    const reply = await this.o.link.call(
      ['SET', this.o.keys.account(name), JSON.stringify({ ...old, hash }), 'XX'],
      this.deadline(),
    );
    return reply === 'OK';
  }

  async createSession(session: LoginSession): Promise<void> {
    const d = this.deadline();
    const ttl = Math.max(1, session.expires - Date.now());
    const setKey = this.o.keys.accountSessions(session.account);
    await this.o.link.call(
      ['SET', this.o.keys.session(session.id), JSON.stringify(session), 'PX', String(ttl)],
      d,
    );
    await this.o.link.call(['RPUSH', setKey, session.id], d);
    await this.o.link.call(['PEXPIRE', setKey, String(ttl), 'GT'], d);
    await this.o.link.call(['PEXPIRE', setKey, String(ttl), 'NX'], d);
    // Beyond the limit, the oldest logins end (the list is in login order).
    const ended: string[] = [];
    for (;;) {
      const len = await this.o.link.call(['LLEN', setKey], d);
      if (typeof len !== 'number' || len <= this.maxSessions) break;
      const id = await this.o.link.call(['LPOP', setKey], d);
      if (typeof id !== 'string') break;
      await this.o.link.call(['DEL', this.o.keys.session(id)], d);
      ended.push(id);
    }
    if (ended.length > 0) await this.announce(ended);
  }

  async getSession(id: string): Promise<LoginSession | undefined> {
    const s = parse<LoginSession>(await this.o.link.call(['GET', this.o.keys.session(id)], this.deadline()));
    return s && s.expires > Date.now() ? s : undefined;
  }

  async deleteSession(id: string): Promise<LoginSession | undefined> {
    const d = this.deadline();
    const s = parse<LoginSession>(await this.o.link.call(['GETDEL', this.o.keys.session(id)], d));
    if (!s) return undefined;
    await this.o.link.call(['LREM', this.o.keys.accountSessions(s.account), '0', id], d);
    await this.announce([id]);
    return s;
  }

  async deleteAccountSessions(name: string): Promise<string[]> {
    const d = this.deadline();
    const setKey = this.o.keys.accountSessions(name);
    const ids: string[] = [];
    // LPOP one at a time: a login racing with this either is popped and ended, or was added after
    // the change and stays valid; no id is dropped from the list while its session lives on.
    for (;;) {
      const id = await this.o.link.call(['LPOP', setKey], d);
      if (typeof id !== 'string') break;
      await this.o.link.call(['DEL', this.o.keys.session(id)], d);
      ids.push(id);
    }
    if (ids.length > 0) await this.announce(ids);
    return ids;
  }

  private async announce(ids: string[]): Promise<void> {
    try {
      await this.o.link.call(['PUBLISH', this.o.keys.sessionsEnded(), JSON.stringify(ids)], this.deadline());
    } catch (err) {
      // The sessions are gone from Redis already: every node refuses them at the next command.
      this.o.onWarning(`announce ended sessions: ${(err as Error).message}`);
    }
  }

  private readonly onEnded = (payload: string): void => {
    const ids = parse<unknown>(payload);
    if (!Array.isArray(ids)) return;
    const clean = ids.filter((x): x is string => typeof x === 'string');
    for (const l of this.listeners) l(clean);
  };

  onSessionsEnded(listener: (ids: string[]) => void): Unsubscribe {
    this.listeners.add(listener);
    if (!this.subscribed) {
      this.subscribed = true;
      this.o.sub.client
        .subscribe(this.o.keys.sessionsEnded(), this.onEnded)
        .catch((err: Error) => this.o.onWarning(`subscribe sessions-ended: ${err.message}`));
    }
    return () => this.listeners.delete(listener);
  }
}
