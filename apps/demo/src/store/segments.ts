import { open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogHandle } from './log-handle.js';
import type { StoredMessage } from './types.js';

/**
 * On-disk layout of the file store (one job: names, formats, scanning; no policy):
 *
 *   <data-dir>/log/0000000001.log   JSON lines, one message each, append-only while active
 *   <data-dir>/log/0000000001.idx   written once the segment is sealed: rooms and counts
 *   <data-dir>/messages.log         the single log of older versions, moved into log/ at start
 */
export const LOG_DIR = 'log';
export const LEGACY_LOG = 'messages.log';

const SEG_RE = /^(\d{10})\.log$/;

export function segmentPath(dir: string, seq: number): string {
  return join(dir, `${String(seq).padStart(10, '0')}.log`);
}
export function indexPath(dir: string, seq: number): string {
  return join(dir, `${String(seq).padStart(10, '0')}.idx`);
}

/** Segment numbers present in `dir`, oldest first. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  const seqs: number[] = [];
  for (const name of names) {
    const m = SEG_RE.exec(name);
    if (m) seqs.push(Number(m[1]));
  }
  return seqs.sort((a, b) => a - b);
}

/** What start-up needs to know about a sealed segment without reading it. */
export interface SegmentIndex {
  readonly v: 1;
  readonly seq: number;
  /** Size of the segment file when it was sealed. */
  readonly bytes: number;
  readonly count: number;
  /** Largest id and timestamp in the segment ('0-0' / 0 when empty). */
  readonly last: string;
  readonly maxTs: number;
  /** [room, messages] pairs: an array, so a room called `__proto__` is just a string. */
  readonly rooms: [string, number][];
}

export async function readIndex(dir: string, seq: number): Promise<SegmentIndex | undefined> {
  try {
    const v = JSON.parse(await readFile(indexPath(dir, seq), 'utf8')) as SegmentIndex;
    if (
      v.v === 1 &&
      v.seq === seq &&
      Number.isSafeInteger(v.bytes) &&
      Number.isSafeInteger(v.count) &&
      typeof v.last === 'string' &&
      typeof v.maxTs === 'number' &&
      Array.isArray(v.rooms) &&
      v.rooms.every((r) => Array.isArray(r) && typeof r[0] === 'string' && Number.isSafeInteger(r[1]))
    ) {
      return v;
    }
  } catch {
    // missing or unreadable: the caller rebuilds it from the segment
  }
  return undefined;
}

/** Written to a temporary name, synced, then renamed: an index is whole or absent. */
export async function writeIndex(dir: string, index: SegmentIndex): Promise<void> {
  const final = indexPath(dir, index.seq);
  const tmp = `${final}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(index));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, final);
}

/** Makes a create, rename or unlink in `dir` itself durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Running totals of one segment, turned into its index when it is sealed. */
export class SegmentStats {
  count = 0;
  last = '0-0';
  maxTs = 0;
  readonly rooms = new Map<string, number>();

  add(message: StoredMessage): void {
    this.count++;
    this.last = message.id;
    if (message.ts > this.maxTs) this.maxTs = message.ts;
    this.rooms.set(message.room, (this.rooms.get(message.room) ?? 0) + 1);
  }

  toIndex(seq: number, bytes: number): SegmentIndex {
    return {
      v: 1,
      seq,
      bytes,
      count: this.count,
      last: this.last,
      maxTs: this.maxTs,
      rooms: [...this.rooms],
    };
  }
}

export interface LogRecord {
  readonly message: StoredMessage;
  /** The client's message id, when it sent one. */
  readonly cid: string | undefined;
}

/** One log line; undefined when it is not a message record. */
export function parseRecord(line: string): LogRecord | undefined {
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
    // fall through: the caller reports the corrupt line
  }
  return undefined;
}

export interface ScanResult {
  /** Offset just after the last newline: where the next append goes. */
  readonly good: number;
  readonly size: number;
}

export interface ScanCallbacks {
  readonly onRecord: (record: LogRecord, line: Buffer) => void;
  readonly onCorrupt: (lineNo: number, bytes: number) => void;
  /** Counts every byte read, so tests can prove start-up reads only what it needs. */
  readonly onBytes?: (n: number) => void;
}

const CHUNK = 1 << 20;
/** A line longer than this is corrupt whatever it holds (a message is at most a few KiB). */
const MAX_LINE = 1 << 20;

/**
 * Streams a segment in 1 MiB reads (no 2 GiB readFile limit, memory independent of its size).
 * A last line without a newline (a torn write) is left out of `good`.
 */
export async function scanSegment(fh: LogHandle, cb: ScanCallbacks): Promise<ScanResult> {
  const { size } = await fh.stat();
  const buf = Buffer.allocUnsafe(CHUNK);
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overlong = false;
  let pos = 0;
  let good = 0;
  let lineNo = 0;
  while (pos < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - pos), pos);
    if (bytesRead <= 0) break;
    cb.onBytes?.(bytesRead);
    const chunk = buf.subarray(0, bytesRead);
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      lineNo++;
      const piece = chunk.subarray(start, nl);
      const line = carryLen > 0 ? Buffer.concat([...carry, piece]) : piece;
      const bytes = line.length + (overlong ? MAX_LINE : 0);
      carry = [];
      carryLen = 0;
      if (overlong) cb.onCorrupt(lineNo, bytes);
      else if (line.length > 0) {
        const record = parseRecord(line.toString('utf8'));
        if (record) cb.onRecord(record, line);
        else cb.onCorrupt(lineNo, line.length);
      }
      overlong = false;
      start = nl + 1;
      good = pos + start;
    }
    if (start < bytesRead && !overlong) {
      carry.push(Buffer.from(chunk.subarray(start)));
      carryLen += bytesRead - start;
      if (carryLen > MAX_LINE) {
        overlong = true;
        carry = [];
        carryLen = 0;
      }
    }
    pos += bytesRead;
  }
  return { good, size };
}
