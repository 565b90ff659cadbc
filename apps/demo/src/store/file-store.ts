import { DEFAULT_ROOM } from '../protocol/frames.js';
import { AccountFile } from './account-file.js';
import { AclFile } from './acl-file.js';
import type { AccountLimits } from './accounts.js';
import type { RoomAclLimits } from './room-acl.js';
import type { OpenLogFile } from './log-handle.js';
import { LocalPresence } from './presence.js';
import { cutoffMs, DEFAULT_RETENTION, type RetentionPolicy } from './retention.js';
import { StoreClosedError } from './errors.js';
import { SegmentLog } from './segment-log.js';
import {
  type AppendOptions,
  type ChatStore,
  compareIds,
  type DirectEvent,
  type ReadOptions,
  type ReadResult,
  type RoomCount,
  type RoomEvent,
  type StoredMessage,
  type StoreHealth,
  StoreUnavailableError,
  type Unsubscribe,
} from './types.js';

export interface FileStoreOptions {
  /** Directory holding `log/` (segments, created 0700, files 0600); created if missing. */
  readonly dataDir: string;
  /**
   * What is kept, in memory (history, resume) and on disk: the newest `messages` per room and/or
   * nothing older than `days`. Segments holding only older messages are deleted.
   * @default { messages: retainPerRoom }
   */
  readonly retention?: RetentionPolicy;
  /** Shorthand for `retention.messages` (older option name). @default 10000 */
  readonly retainPerRoom?: number;
  /** Rotate the active log segment at this size. @default 16 MiB */
  readonly segmentBytes?: number;
  /** While the log is failed (disk full, I/O error), try to repair and resume this often. @default 1000 */
  readonly probeIntervalMs?: number;
  /** A write + sync taking longer than this turns `health()` (and /healthz) unhealthy. @default 5000 */
  readonly stallMs?: number;
  /** Appends waiting for the disk beyond this many bytes are refused (retryable). @default 8 MiB */
  readonly maxQueuedBytes?: number;
  /** Opens a segment file; tests inject failing or stalling handles. @default Node's fs, mode 0600 */
  readonly openFile?: OpenLogFile;
  /**
   * Client message ids remembered per nickname for deduplicating resends (the newest ones; the
   * log keeps every cid, so recovery refills this). @default 256
   */
  readonly cidsPerNick?: number;
  /** Nicknames whose recent cids are remembered; the least recently active is forgotten. @default 10000 */
  readonly cidNicks?: number;
  /** The room rooms() always lists (the chat's default room). @default 'lobby' */
  readonly defaultRoom?: string;
  /** Accounts and sessions kept at most (see AccountLimits). */
  readonly accountLimits?: AccountLimits;
  /** Private rooms and members kept at most (see RoomAclLimits). */
  readonly aclLimits?: RoomAclLimits;
  /** Called with a human-readable note when recovery drops a torn or corrupt line, or the log fails. */
  readonly onWarning?: (message: string) => void;
}

interface Pending {
  readonly message: StoredMessage;
  readonly cidKey: string | undefined;
  readonly line: string;
  readonly resolve: (message: StoredMessage) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Single-node store: room messages go to a segmented append-only JSON-lines log (segment-log.ts)
 * with group commit (all appends waiting while one write + fdatasync runs share the next one),
 * and are acknowledged and fanned out in-process only once durable. A failed write or sync
 * acknowledges nothing of its batch; the store then refuses appends (retryable
 * `StoreUnavailableError`, /healthz 503) until a probe shows the disk takes writes again.
 */
export class FileStore implements ChatStore {
  private readonly retention: RetentionPolicy;
  private readonly onWarning: (message: string) => void;
  private readonly log: SegmentLog;
  private readonly maxQueuedBytes: number;
  private readonly history = new Map<string, StoredMessage[]>();
  private readonly dropped = new Set<string>();
  private readonly listeners = new Map<string, Set<(event: RoomEvent) => void>>();
  private readonly presence: LocalPresence;
  /** Accounts and login sessions in `<dataDir>/accounts.json`. */
  readonly accounts: AccountFile;
  /** Private rooms in `<dataDir>/rooms.json`. */
  readonly acls: AclFile;
  /**
   * Recent client message ids: lower-case nick -> (room + cid -> the message, or its pending
   * append). Both levels are Maps in insertion order, trimmed from the oldest, so memory is bounded
   * by cidNicks x cidsPerNick whatever clients send.
   */
  private readonly cids = new Map<string, Map<string, StoredMessage | Promise<StoredMessage>>>();
  private readonly cidsPerNick: number;
  private readonly cidNicks: number;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | undefined;
  private opened = false;
  private closed = false;
  private lastMs = 0;
  private lastSeq = 0;

  constructor(options: FileStoreOptions) {
    this.retention = options.retention ?? { messages: options.retainPerRoom ?? DEFAULT_RETENTION.messages };
    this.cidsPerNick = options.cidsPerNick ?? 256;
    this.cidNicks = options.cidNicks ?? 10_000;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 8 * 1024 * 1024;
    this.onWarning = options.onWarning ?? (() => {});
    this.presence = new LocalPresence(options.defaultRoom ?? DEFAULT_ROOM);
    this.accounts = new AccountFile(options.dataDir, options.accountLimits);
    this.acls = new AclFile(options.dataDir, options.aclLimits);
    this.log = new SegmentLog({
      dataDir: options.dataDir,
      retention: this.retention,
      onWarning: this.onWarning,
      ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
      ...(options.probeIntervalMs !== undefined ? { probeIntervalMs: options.probeIntervalMs } : {}),
      ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}),
      ...(options.openFile ? { openFile: options.openFile } : {}),
    });
  }

  /** The active log segment (where the next append goes). */
  get path(): string {
    return this.log.activePath;
  }

  /** Bytes of log read since open: start-up reads only what retention keeps. */
  get bytesRead(): number {
    return this.log.bytesRead;
  }

  async open(): Promise<void> {
    await this.accounts.open();
    await this.acls.open();
    const { truncatedRooms, lastId } = await this.log.open(({ message, cid }) => {
      this.remember(message);
      if (cid !== undefined) this.rememberCid(message.nick, message.room, cid, message);
      this.advanceClock(message.id);
    });
    for (const room of truncatedRooms) this.dropped.add(room);
    this.advanceClock(lastId);
    this.opened = true;
  }

  /**
   * With `clientId`, a message is stored once per (nick, room, clientId) among the nick's recent
   * cids: a resend (the client never saw the ack: reconnect, crash after the fsync) resolves with
   * the message stored first, or waits for it while it is still being written.
   */
  append(room: string, nick: string, text: string, options?: AppendOptions): Promise<StoredMessage> {
    if (this.closed || !this.opened) return Promise.reject(new StoreClosedError());
    const cid = options?.clientId;
    let cidKey: string | undefined;
    if (cid !== undefined) {
      cidKey = `${room}\u0000${cid}`;
      const known = this.cids.get(nick.toLowerCase())?.get(cidKey);
      if (known !== undefined) return Promise.resolve(known);
    }
    // Refuse at once while failed or backed up: nothing is acknowledged, the client retries.
    const problem = this.log.failed ? this.log.problem() : undefined;
    if (problem) return Promise.reject(new StoreUnavailableError(`message not stored: ${problem}`));
    if (this.queuedBytes > this.maxQueuedBytes) {
      return Promise.reject(new StoreUnavailableError('message not stored: the disk is not keeping up'));
    }
    const ts = Date.now();
    const message: StoredMessage = { id: this.nextId(ts), room, nick, text, ts };
    const record = cid === undefined ? message : { ...message, cid };
    const stored = new Promise<StoredMessage>((resolve, reject) => {
      const line = `${JSON.stringify(record)}\n`;
      this.queuedBytes += line.length;
      this.queue.push({ message, cidKey, line, resolve, reject });
      if (!this.flushing) this.flushing = this.flush();
    });
    if (cid !== undefined) this.rememberCid(nick, room, cid, stored);
    return stored;
  }

  private rememberCid(
    nick: string,
    room: string,
    cid: string,
    value: StoredMessage | Promise<StoredMessage>,
  ): void {
    const key = nick.toLowerCase();
    let recent = this.cids.get(key);
    if (recent)
      this.cids.delete(key); // re-insert: most recently active nick last
    else recent = new Map();
    this.cids.set(key, recent);
    if (this.cids.size > this.cidNicks) this.cids.delete(this.cids.keys().next().value!);
    const cidKey = `${room}\u0000${cid}`;
    recent.delete(cidKey);
    recent.set(cidKey, value);
    if (recent.size > this.cidsPerNick) recent.delete(recent.keys().next().value!);
  }

  /** The write failed: the message does not exist, so a resend must store it. */
  private forgetCid(nick: string, cidKey: string): void {
    const recent = this.cids.get(nick.toLowerCase());
    if (recent?.get(cidKey) instanceof Promise) recent.delete(cidKey);
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      let text = '';
      for (const p of batch) text += p.line;
      this.queuedBytes -= text.length;
      try {
        await this.log.commit(
          Buffer.from(text),
          batch.map((p) => p.message),
        );
      } catch (err) {
        const error = new StoreUnavailableError(`message not stored: ${(err as Error).message}`, {
          cause: err,
        });
        for (const p of batch) {
          if (p.cidKey !== undefined) this.forgetCid(p.message.nick, p.cidKey);
          p.reject(error);
        }
        continue;
      }
      for (const p of batch) {
        this.remember(p.message);
        if (p.cidKey !== undefined) {
          const recent = this.cids.get(p.message.nick.toLowerCase());
          if (recent?.has(p.cidKey)) recent.set(p.cidKey, p.message);
        }
        this.emit(p.message.room, { kind: 'message', message: p.message });
        p.resolve(p.message);
      }
    }
    this.flushing = undefined;
  }

  async read(room: string, options: ReadOptions): Promise<ReadResult> {
    const list = this.history.get(room) ?? [];
    if (this.retention.days !== undefined) this.expire(room, list);
    const limit = Math.max(0, options.limit);
    if (options.after === undefined) {
      return { messages: list.slice(Math.max(0, list.length - limit)), truncated: false };
    }
    // First index with id > after.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareIds(list[mid]!.id, options.after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const gapBefore =
      lo === 0 && this.dropped.has(room) && list.length > 0 && compareIds(list[0]!.id, options.after) > 0;
    const messages = list.slice(lo, lo + limit);
    return { messages, truncated: gapBefore || lo + limit < list.length };
  }

  subscribe(room: string, listener: (event: RoomEvent) => void): Unsubscribe {
    let set = this.listeners.get(room);
    if (!set) this.listeners.set(room, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(room);
    };
  }

  async publish(event: Exclude<RoomEvent, { kind: 'message' }>): Promise<void> {
    this.emit(event.room, event);
  }

  claimNick(nick: string, owner: string): Promise<boolean> {
    return Promise.resolve(this.presence.claimNick(nick, owner));
  }
  releaseNick(nick: string, owner: string): Promise<void> {
    this.presence.releaseNick(nick, owner);
    return Promise.resolve();
  }
  nickTaken(nick: string): Promise<boolean> {
    return Promise.resolve(this.presence.nickTaken(nick));
  }
  nickHeldBy(nick: string, owner: string): Promise<boolean> {
    return Promise.resolve(this.presence.nickHeldBy(nick, owner));
  }
  nickOwner(session: string): string {
    return session;
  }
  sendDirect(event: DirectEvent): Promise<boolean> {
    return Promise.resolve(this.presence.sendDirect(event));
  }
  subscribeDirect(address: string, listener: (event: DirectEvent) => void): Unsubscribe {
    return this.presence.subscribeDirect(address, listener);
  }
  addMember(room: string, nick: string): Promise<void> {
    this.presence.addMember(room, nick);
    return Promise.resolve();
  }
  removeMember(room: string, nick: string): Promise<void> {
    this.presence.removeMember(room, nick);
    return Promise.resolve();
  }
  memberCount(room: string): Promise<number> {
    return Promise.resolve(this.presence.memberCount(room));
  }
  members(room: string): Promise<string[]> {
    return Promise.resolve(this.presence.members(room));
  }
  rooms(): Promise<RoomCount[]> {
    return Promise.resolve(this.presence.rooms(this.history.keys()));
  }
  evictRoom(room: string): Promise<void> {
    // Never under a live subscriber; the log on disk keeps the messages (read again at start).
    if (!this.listeners.has(room)) {
      this.history.delete(room);
      this.dropped.delete(room);
    }
    return Promise.resolve();
  }

  /** Unhealthy while closed, failed (until the probe recovers) or stuck in a write or sync. */
  async health(): Promise<StoreHealth> {
    const problem = this.opened ? this.log.problem() : 'store not open';
    return problem === undefined ? { store: 'file', ok: true } : { store: 'file', ok: false, error: problem };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.accounts.flush();
    await this.acls.flush();
    await this.log.close();
  }

  private emit(room: string, event: RoomEvent): void {
    const set = this.listeners.get(room);
    if (!set) return;
    for (const listener of set) listener(event);
  }

  /** Age retention in memory: drop the messages past the limit from the front of the list. */
  private expire(room: string, list: StoredMessage[]): void {
    const cutoff = cutoffMs(this.retention, Date.now());
    let n = 0;
    while (n < list.length && list[n]!.ts < cutoff) n++;
    if (n === 0) return;
    list.splice(0, n);
    this.dropped.add(room);
  }

  private remember(message: StoredMessage): void {
    let list = this.history.get(message.room);
    if (!list) this.history.set(message.room, (list = []));
    list.push(message);
    // Trim in chunks so the array copy is amortised, not paid per message.
    const keep = this.retention.messages;
    if (list.length > keep + 1024) {
      list.splice(0, list.length - keep);
      this.dropped.add(message.room);
    }
  }

  private nextId(now: number): string {
    if (now > this.lastMs) {
      this.lastMs = now;
      this.lastSeq = 0;
    } else {
      this.lastSeq++;
    }
    return `${this.lastMs}-${this.lastSeq}`;
  }

  private advanceClock(id: string): void {
    const dash = id.indexOf('-');
    const ms = Number(id.slice(0, dash));
    const seq = Number(id.slice(dash + 1));
    if (ms > this.lastMs || (ms === this.lastMs && seq > this.lastSeq)) {
      this.lastMs = ms;
      this.lastSeq = seq;
    }
  }
}
