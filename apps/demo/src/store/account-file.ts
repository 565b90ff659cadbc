import { join } from 'node:path';
import {
  type AccountLimits,
  AccountLimitError,
  type AccountRecord,
  type AccountStore,
  type LoginSession,
} from './accounts.js';
import type { Unsubscribe } from './types.js';
import { readStateFile, writeStateFile } from './json-file.js';

interface FileShape {
  v: 1;
  accounts: AccountRecord[];
  sessions: LoginSession[];
}

/** The accounts file is refused (and the server does not start) rather than silently replaced. */
export class AccountFileError extends Error {
  readonly code = 'ERR_ACCOUNT_FILE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AccountFileError';
  }
}

/**
 * The file store's accounts and sessions: held in memory, written as a whole to
 * `<dataDir>/accounts.json` (mode 0600) through a temporary file, fsync and rename after every
 * change, so a crash leaves the old or the new file, never half of one. Writes are serialised and
 * a change resolves only once it is on disk. Expired sessions are dropped on every write.
 */
export class AccountFile implements AccountStore {
  private readonly path: string;
  private readonly dir: string;
  private readonly maxAccounts: number;
  private readonly maxSessions: number;
  private readonly accounts = new Map<string, AccountRecord>();
  private readonly sessions = new Map<string, LoginSession>();
  private readonly listeners = new Set<(ids: string[]) => void>();
  private writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string, limits: AccountLimits = {}) {
    this.dir = dataDir;
    this.path = join(dataDir, 'accounts.json');
    this.maxAccounts = limits.maxAccounts ?? 100_000;
    this.maxSessions = limits.maxSessionsPerAccount ?? 20;
  }

  async open(): Promise<void> {
    const text = await readStateFile(this.dir, this.path);
    if (text === undefined) return;
    let data: FileShape;
    try {
      data = JSON.parse(text) as FileShape;
      if (data.v !== 1 || !Array.isArray(data.accounts) || !Array.isArray(data.sessions))
        throw new Error('bad shape');
    } catch (err) {
      throw new AccountFileError(
        `${this.path} is not a readable accounts file; move it away to start without accounts`,
        {
          cause: err,
        },
      );
    }
    const now = Date.now();
    for (const a of data.accounts) {
      if (typeof a?.name === 'string' && typeof a.hash === 'string')
        this.accounts.set(a.name.toLowerCase(), a);
    }
    for (const s of data.sessions) {
      if (typeof s?.id === 'string' && typeof s.account === 'string' && s.expires > now)
        this.sessions.set(s.id, s);
    }
  }

  async createAccount(record: AccountRecord): Promise<boolean> {
    const key = record.name.toLowerCase();
    if (this.accounts.has(key)) return false;
    if (this.accounts.size >= this.maxAccounts) throw new AccountLimitError(this.maxAccounts);
    this.accounts.set(key, record);
    try {
      await this.save();
    } catch (err) {
      if (this.accounts.get(key) === record) this.accounts.delete(key);
      throw err;
    }
    return true;
  }

  async getAccount(name: string): Promise<AccountRecord | undefined> {
    return this.accounts.get(name.toLowerCase());
  }

  async setPasswordHash(name: string, hash: string): Promise<boolean> {
    const key = name.toLowerCase();
    const old = this.accounts.get(key);
    if (!old) return false;
    this.accounts.set(key, { ...old, hash });
    await this.save();
    return true;
  }

  async createSession(session: LoginSession): Promise<void> {
    const mine = [...this.sessions.values()].filter(
      (s) => s.account.toLowerCase() === session.account.toLowerCase(),
    );
    const ended: string[] = [];
    // Oldest first (insertion order): a new login beyond the limit ends the oldest session.
    while (mine.length >= this.maxSessions) {
      const old = mine.shift()!;
      this.sessions.delete(old.id);
      ended.push(old.id);
    }
    this.sessions.set(session.id, session);
    await this.save();
    if (ended.length > 0) this.emit(ended);
  }

  async getSession(id: string): Promise<LoginSession | undefined> {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expires <= Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  async deleteSession(id: string): Promise<LoginSession | undefined> {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    this.sessions.delete(id);
    await this.save();
    this.emit([id]);
    return s;
  }

  async deleteAccountSessions(name: string): Promise<string[]> {
    const key = name.toLowerCase();
    const ids = [...this.sessions.values()].filter((s) => s.account.toLowerCase() === key).map((s) => s.id);
    for (const id of ids) this.sessions.delete(id);
    if (ids.length > 0) {
      await this.save();
      this.emit(ids);
    }
    return ids;
  }

  onSessionsEnded(listener: (ids: string[]) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ids: string[]): void {
    for (const l of this.listeners) l(ids);
  }

  /** Queue a write of the current state; resolves once that state (or a newer one) is durable. */
  private save(): Promise<void> {
    const next = this.writing.catch(() => {}).then(() => this.write());
    this.writing = next;
    return next;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
    const data: FileShape = {
      v: 1,
      accounts: [...this.accounts.values()],
      sessions: [...this.sessions.values()],
    };
    await writeStateFile(this.path, data);
  }

  /** Wait for writes in progress (store close). */
  async flush(): Promise<void> {
    await this.writing.catch(() => {});
  }
}
