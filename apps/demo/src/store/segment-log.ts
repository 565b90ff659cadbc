import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type LogHandle, type OpenLogFile, openLogFile, writeAll } from './log-handle.js';
import { cutoffMs, planSegments, type RetentionPolicy } from './retention.js';
import { compactSegment, readSealed, rebuildIndex, type SegmentReader } from './segment-reader.js';
import {
  indexPath,
  LEGACY_LOG,
  LOG_DIR,
  type LogRecord,
  listSegments,
  readIndex,
  type SegmentIndex,
  SegmentStats,
  scanSegment,
  segmentPath,
  syncDir,
  writeIndex,
} from './segments.js';
import { compareIds, type StoredMessage } from './types.js';

export interface SegmentLogOptions {
  readonly dataDir: string;
  readonly retention: RetentionPolicy;
  /** Rotate the active segment once it reaches this size. @default 16 MiB */
  readonly segmentBytes?: number;
  /** While failed, try to repair and resume this often. @default 1000 */
  readonly probeIntervalMs?: number;
  /** A write + sync running longer than this makes the store unhealthy. @default 5000 */
  readonly stallMs?: number;
  readonly openFile?: OpenLogFile;
  readonly onWarning: (message: string) => void;
}

export interface LoadResult {
  readonly truncatedRooms: Set<string>;
  /** Largest id ever stored (dropped segments included), so ids never go back. */
  readonly lastId: string;
}

/** Bytes of newlines a recovery probe writes (and cuts again) to see that space is back. */
const PROBE_BYTES = 8192;

/**
 * The durable half of the file store: segmented JSON-lines log, one writer. Everything up to
 * `size` in the active segment is synced; a write or sync error cuts the file back to `size`
 * (through a fresh handle: after a failed fsync the old one cannot be trusted) and retries once,
 * else the log is failed: commits reject until a periodic probe proves the disk takes writes.
 */
export class SegmentLog {
  readonly dir: string;
  /** Bytes read from segment files since open (start-up cost, asserted by tests). */
  bytesRead = 0;
  private readonly dataDir: string;
  private readonly policy: RetentionPolicy;
  private readonly segmentBytes: number;
  private readonly probeIntervalMs: number;
  private readonly stallMs: number;
  private readonly openFile: OpenLogFile;
  private readonly warn: (message: string) => void;
  private fh: LogHandle | undefined;
  private seq = 1;
  private size = 0;
  private stats = new SegmentStats();
  private sealed: SegmentIndex[] = [];
  private failure: Error | undefined;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private commitStarted = 0;
  private closed = false;

  constructor(options: SegmentLogOptions) {
    this.dataDir = options.dataDir;
    this.dir = join(options.dataDir, LOG_DIR);
    this.policy = options.retention;
    this.segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.stallMs = options.stallMs ?? 5000;
    this.openFile = options.openFile ?? openLogFile;
    this.warn = options.onWarning;
  }

  /** What the sealed-segment readers need: where, how to open, whom to tell, what to count. */
  private get reader(): SegmentReader {
    return {
      dir: this.dir,
      openFile: this.openFile,
      warn: this.warn,
      countBytes: (n) => {
        this.bytesRead += n;
      },
    };
  }

  get activePath(): string {
    return segmentPath(this.dir, this.seq);
  }

  /** Why the log refuses writes right now, or undefined when it is healthy. */
  problem(now = Date.now()): string | undefined {
    if (this.closed) return 'store closed';
    if (this.failure) return `log write failed: ${this.failure.message}`;
    if (this.commitStarted > 0 && now - this.commitStarted > this.stallMs)
      return `log write or sync stalled for ${now - this.commitStarted} ms`;
    return undefined;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Creates the directories (0700), moves an old single log into place, drops segments past
   * retention and feeds the retained records, oldest first, to `onRecord`.
   */
  async open(onRecord: (record: LogRecord) => void): Promise<LoadResult> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // An existing directory keeps its mode (it may be the operator's); say so if others can read it.
    if (((await stat(this.dataDir)).mode & 0o077) !== 0)
      this.warn(`${this.dataDir} is accessible to other users; chmod 700 it to keep messages private`);
    let seqs = await listSegments(this.dir);
    const legacy = join(this.dataDir, LEGACY_LOG);
    if (existsSync(legacy)) {
      if (seqs.length === 0) {
        // One-time conversion: the old log becomes segment 1 (sealed below if it is large).
        await chmod(legacy, 0o600);
        await rename(legacy, segmentPath(this.dir, 1));
        await syncDir(this.dir);
        await syncDir(this.dataDir);
        this.warn(`moved ${legacy} to ${segmentPath(this.dir, 1)} (segmented log)`);
        seqs = [1];
      } else {
        this.warn(`${legacy} ignored: ${this.dir} already holds the log`);
      }
    }
    if (seqs.length === 0) seqs = [1];
    let lastId = '0-0';
    const newer = (id: string) => {
      if (compareIds(id, lastId) > 0) lastId = id;
    };

    for (const seq of seqs.slice(0, -1)) {
      let index = await readIndex(this.dir, seq);
      // A size that does not match means the index is stale (a crash between a rewrite and its
      // index): the segment itself is the truth.
      if (!index || index.bytes !== (await stat(segmentPath(this.dir, seq))).size)
        index = await rebuildIndex(this.reader, seq);
      this.sealed.push(index);
      newer(index.last);
    }

    // The active segment is read whole (it is at most about one segment long).
    this.seq = seqs.at(-1)!;
    const active: LogRecord[] = [];
    const fh = await this.openFile(this.activePath);
    this.fh = fh;
    const scan = await scanSegment(fh, {
      onRecord: (r) => {
        active.push(r);
        this.stats.add(r.message);
      },
      onCorrupt: (line, bytes) =>
        this.warn(`${this.activePath}: skipped corrupt line ${line} (${bytes} bytes)`),
      onBytes: (n) => (this.bytesRead += n),
    });
    // The segment (and log/ itself) may have just been created: make the names durable too.
    await syncDir(this.dir);
    await syncDir(this.dataDir);
    this.size = scan.good;
    if (scan.good < scan.size) {
      this.warn(`${this.activePath}: dropped torn last line (${scan.size - scan.good} bytes)`);
      await fh.truncate(scan.good);
      await fh.datasync();
    }
    if (active.length > 0) newer(this.stats.last);

    let activeRecords = active;
    if (this.size >= this.segmentBytes) {
      // Too large to read whole at every start (an old single log): seal it, retention decides.
      await this.seal();
      activeRecords = [];
    }

    const plan = planSegments(this.sealed, this.stats.rooms, this.policy, Date.now());
    await this.dropSegments(plan.drop);
    this.sealed = plan.keep;
    for (const index of plan.keep) {
      const keepPerRoom = plan.compact.get(index.seq);
      if (keepPerRoom) {
        const compacted = await compactSegment(
          this.reader,
          index,
          keepPerRoom,
          cutoffMs(this.policy, Date.now()),
          onRecord,
        );
        this.sealed[this.sealed.indexOf(index)] = compacted;
      } else await readSealed(this.reader, index.seq, onRecord);
    }
    for (const r of activeRecords) onRecord(r);
    return { truncatedRooms: plan.truncatedRooms, lastId };
  }

  /**
   * Appends `data` (whole lines) and syncs it; resolves only once it is durable. `messages` are
   * the records in it, for the segment's index.
   */
  async commit(data: Buffer, messages: readonly StoredMessage[]): Promise<void> {
    if (this.closed || !this.fh) throw new Error('store closed');
    if (this.failure) throw this.failure;
    this.commitStarted = Date.now();
    try {
      await this.writeAndSync(data);
    } catch (first) {
      this.warn(`${this.activePath}: ${(first as Error).message}; cutting back to ${this.size} bytes`);
      try {
        await this.repair();
        await this.writeAndSync(data);
      } catch (err) {
        // Leave no half batch behind if the disk allows it; the probe retries otherwise. The
        // probe starts only after this repair, so two repairs never race for the handle.
        await this.repair().catch(() => {});
        this.fail(err as Error);
        throw this.failure!;
      }
    } finally {
      this.commitStarted = 0;
    }
    this.size += data.length;
    for (const m of messages) this.stats.add(m);
    if (this.size >= this.segmentBytes) {
      try {
        await this.rotate();
      } catch (err) {
        // Not a durability problem: the active segment just grows until the next try.
        this.warn(`rotation of ${this.activePath} failed: ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.probe);
    this.probe = undefined;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }

  private async writeAndSync(data: Buffer): Promise<void> {
    await writeAll(this.fh!, data, this.size);
    await this.fh!.datasync();
  }

  /** Cut the active segment back to its last durable byte through a fresh handle. */
  private async repair(): Promise<void> {
    const old = this.fh;
    this.fh = undefined;
    await old?.close().catch(() => {});
    const fh = await this.openFile(this.activePath);
    if (this.closed) {
      await fh.close();
      throw new Error('store closed');
    }
    this.fh = fh;
    await fh.truncate(this.size);
    await fh.datasync();
  }

  private fail(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    this.failure = Object.assign(new Error(`${code ? `${code}: ` : ''}${err.message}`), { cause: err });
    this.warn(`message log failed, refusing messages until the disk takes writes again: ${err.message}`);
    this.probe ??= setInterval(() => void this.tryRecover(), this.probeIntervalMs);
    this.probe.unref();
  }

  /** Repair, then prove the disk takes a write + sync, then cut the probe bytes off again. */
  private async tryRecover(): Promise<void> {
    if (this.probing || this.closed || !this.failure) return;
    this.probing = true;
    try {
      await this.repair();
      // Newlines: if the cut below fails, start-up skips them as empty lines.
      await writeAll(this.fh!, Buffer.alloc(PROBE_BYTES, 10), this.size);
      await this.fh!.datasync();
      await this.fh!.truncate(this.size);
      await this.fh!.datasync();
      this.failure = undefined;
      clearInterval(this.probe);
      this.probe = undefined;
      this.warn('message log writable again, accepting messages');
    } catch {
      // still failing: the next tick tries again
    } finally {
      this.probing = false;
    }
  }

  private async seal(): Promise<void> {
    const index = this.stats.toIndex(this.seq, this.size);
    await writeIndex(this.dir, index);
    const next = this.seq + 1;
    const fh = await this.openFile(segmentPath(this.dir, next));
    try {
      await syncDir(this.dir);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    // Only now is the segment sealed: a failure above leaves it active (its index is rewritten).
    this.sealed.push(index);
    const old = this.fh;
    this.fh = fh;
    this.seq = next;
    this.size = 0;
    this.stats = new SegmentStats();
    await old?.close().catch(() => {});
  }

  private async rotate(): Promise<void> {
    await this.seal();
    const plan = planSegments(this.sealed, this.stats.rooms, this.policy, Date.now(), 0);
    this.sealed = plan.keep;
    await this.dropSegments(plan.drop);
  }

  private async dropSegments(drop: readonly SegmentIndex[]): Promise<void> {
    if (drop.length === 0) return;
    for (const index of drop) {
      await unlink(indexPath(this.dir, index.seq)).catch(() => {});
      await unlink(segmentPath(this.dir, index.seq));
    }
    await syncDir(this.dir);
  }
}
