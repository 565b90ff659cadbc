import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalPresence } from './presence.js';
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
  type Unsubscribe,
} from './types.js';

export interface FileStoreOptions {
  /** Directory holding `messages.log`; created if missing. */
  readonly dataDir: string;
  /**
   * Messages per room kept in memory for history and resume; older ones stay in the log file only.
   * @default 10000
   */
  readonly retainPerRoom?: number;
  /**
   * Client message ids remembered per nickname for deduplicating resends (the newest ones; the
   * log keeps every cid, so recovery refills this). @default 256
   */
  readonly cidsPerNick?: number;
  /** Nicknames whose recent cids are remembered; the least recently active is forgotten. @default 10000 */
  readonly cidNicks?: number;
  /** Called with a human-readable note when recovery drops a torn or corrupt line. */
  readonly onWarning?: (message: string) => void;
}

interface Pending {
  readonly message: StoredMessage;
  readonly cidKey: string | undefined;
  readonly line: string;
  readonly resolve: (message: StoredMessage) => void;
  readonly reject: (error: Error) => void;
}

export class StoreClosedError extends Error {
  readonly code = 'ERR_STORE_CLOSED';
  constructor() {
    super('the message store is closed');
    this.name = 'StoreClosedError';
  }
}

/**
 * Single-node store: room messages go to an append-only JSON-lines log with group commit (all
 * appends waiting while one fsync runs share the next write + fsync), and are fanned out in-process
 * only once durable. Recovery replays the log and cuts a torn last line, the only damage a crash
 * (kill -9, power loss mid-write) can cause to an append-only file.
 */
export class FileStore implements ChatStore {
  readonly path: string;
  private readonly retain: number;
  private readonly onWarning: (message: string) => void;
  private readonly history = new Map<string, StoredMessage[]>();
  private readonly dropped = new Set<string>();
  private readonly listeners = new Map<string, Set<(event: RoomEvent) => void>>();
  private readonly presence = new LocalPresence();
  /**
   * Recent client message ids: lower-case nick -> (room + cid -> the message, or its pending
   * append). Both levels are Maps in insertion order, trimmed from the oldest, so memory is bounded
   * by cidNicks x cidsPerNick whatever clients send.
   */
  private readonly cids = new Map<string, Map<string, StoredMessage | Promise<StoredMessage>>>();
  private readonly cidsPerNick: number;
  private readonly cidNicks: number;
  private fh: FileHandle | undefined;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private lastMs = 0;
  private lastSeq = 0;

  constructor(options: FileStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.path = join(options.dataDir, 'messages.log');
    this.retain = options.retainPerRoom ?? 10_000;
    this.cidsPerNick = options.cidsPerNick ?? 256;
    this.cidNicks = options.cidNicks ?? 10_000;
    this.onWarning = options.onWarning ?? (() => {});
  }

  async open(): Promise<void> {
    this.fh = await open(this.path, 'a+');
    const data = await this.fh.readFile();
    let good = 0;
    let pos = 0;
    let lineNo = 0;
    while (pos < data.length) {
      const nl = data.indexOf(10, pos);
      lineNo++;
      if (nl === -1) {
        this.onWarning(`${this.path}: dropped torn last line (${data.length - pos} bytes, line ${lineNo})`);
        break;
      }
      const line = data.subarray(pos, nl).toString('utf8');
      pos = nl + 1;
      good = pos;
      if (line.length === 0) continue;
      const record = parseRecord(line);
      if (!record) {
        this.onWarning(`${this.path}: skipped corrupt line ${lineNo}`);
        continue;
      }
      const { message, cid } = record;
      this.remember(message);
      if (cid !== undefined) this.rememberCid(message.nick, message.room, cid, message);
      this.advanceClock(message.id);
    }
    if (good < data.length) {
      // Cut the torn tail so the next append starts on a fresh line.
      await this.fh.truncate(good);
      await this.fh.datasync();
    }
  }

  /**
   * With `clientId`, a message is stored once per (nick, room, clientId) among the nick's recent
   * cids: a resend (the client never saw the ack: reconnect, crash after the fsync) resolves with
   * the message stored first, or waits for it while it is still being written.
   */
  append(room: string, nick: string, text: string, options?: AppendOptions): Promise<StoredMessage> {
    if (this.closed || !this.fh) return Promise.reject(new StoreClosedError());
    const cid = options?.clientId;
    let cidKey: string | undefined;
    if (cid !== undefined) {
      cidKey = `${room}\u0000${cid}`;
      const known = this.cids.get(nick.toLowerCase())?.get(cidKey);
      if (known !== undefined) return Promise.resolve(known);
    }
    const ts = Date.now();
    const message: StoredMessage = { id: this.nextId(ts), room, nick, text, ts };
    const record = cid === undefined ? message : { ...message, cid };
    const stored = new Promise<StoredMessage>((resolve, reject) => {
      this.queue.push({ message, cidKey, line: `${JSON.stringify(record)}\n`, resolve, reject });
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
      try {
        let text = '';
        for (const p of batch) text += p.line;
        await this.fh!.write(text);
        await this.fh!.datasync();
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
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
  sendDirect(event: DirectEvent): Promise<boolean> {
    return Promise.resolve(this.presence.sendDirect(event));
  }
  subscribeDirect(nick: string, listener: (event: DirectEvent) => void): Unsubscribe {
    return this.presence.subscribeDirect(nick, listener);
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

  /** Healthy while open: its failures (disk full, I/O errors) show up as failed appends. */
  async health(): Promise<StoreHealth> {
    return this.closed || !this.fh
      ? { store: 'file', ok: false, error: 'store closed' }
      : { store: 'file', ok: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.fh?.close();
    this.fh = undefined;
  }

  private emit(room: string, event: RoomEvent): void {
    const set = this.listeners.get(room);
    if (!set) return;
    for (const listener of set) listener(event);
  }

  private remember(message: StoredMessage): void {
    let list = this.history.get(message.room);
    if (!list) this.history.set(message.room, (list = []));
    list.push(message);
    // Trim in chunks so the array copy is amortised, not paid per message.
    if (list.length > this.retain + 1024) {
      list.splice(0, list.length - this.retain);
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

/** One log line: the message, plus the client's message id when it sent one. */
function parseRecord(line: string): { message: StoredMessage; cid: string | undefined } | undefined {
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    if (
      typeof v.id === 'string' &&
      typeof v.room === 'string' &&
      typeof v.nick === 'string' &&
      typeof v.text === 'string' &&
      typeof v.ts === 'number'
    ) {
      return {
        message: { id: v.id, room: v.room, nick: v.nick, text: v.text, ts: v.ts },
        cid: typeof v.cid === 'string' ? v.cid : undefined,
      };
    }
  } catch {
    // fall through: a corrupt line is reported by the caller
  }
  return undefined;
}
