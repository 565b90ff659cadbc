import { rename } from 'node:fs/promises';
import { type OpenLogFile, writeAll } from './log-handle.js';
import {
  type LogRecord,
  type SegmentIndex,
  SegmentStats,
  scanSegment,
  segmentPath,
  syncDir,
  writeIndex,
} from './segments.js';

/** Reading sealed segments at start-up: plain reads, index rebuilds and retention rewrites. */
export interface SegmentReader {
  readonly dir: string;
  readonly openFile: OpenLogFile;
  readonly warn: (message: string) => void;
  readonly countBytes: (n: number) => void;
}

export async function rebuildIndex(r: SegmentReader, seq: number): Promise<SegmentIndex> {
  const path = segmentPath(r.dir, seq);
  r.warn(`${path}: index missing or stale, rebuilding it`);
  const stats = new SegmentStats();
  const fh = await r.openFile(path);
  try {
    const scan = await scanSegment(fh, {
      onRecord: (rec) => stats.add(rec.message),
      onCorrupt: () => {},
      onBytes: r.countBytes,
    });
    const index = stats.toIndex(seq, scan.size);
    await writeIndex(r.dir, index);
    return index;
  } finally {
    await fh.close();
  }
}

export async function readSealed(
  r: SegmentReader,
  seq: number,
  onRecord: (record: LogRecord) => void,
): Promise<void> {
  const path = segmentPath(r.dir, seq);
  const fh = await r.openFile(path);
  try {
    await scanSegment(fh, {
      onRecord: (rec) => onRecord(rec),
      onCorrupt: (line, bytes) => r.warn(`${path}: skipped corrupt line ${line} (${bytes} bytes)`),
      onBytes: r.countBytes,
    });
  } finally {
    await fh.close();
  }
}

/**
 * Rewrites a sealed segment that is mostly past retention with only each room's newest
 * `keepPerRoom` messages (and none past the age limit): written aside, synced, renamed over.
 */
export async function compactSegment(
  r: SegmentReader,
  index: SegmentIndex,
  keepPerRoom: Map<string, number>,
  cutoff: number,
  onRecord: (record: LogRecord) => void,
): Promise<SegmentIndex> {
  const path = segmentPath(r.dir, index.seq);
  const total = new Map(index.rooms);
  const seen = new Map<string, number>();
  const kept: Buffer[] = [];
  const stats = new SegmentStats();
  const fh = await r.openFile(path);
  try {
    await scanSegment(fh, {
      onRecord: (rec, line) => {
        const room = rec.message.room;
        const n = (seen.get(room) ?? 0) + 1;
        seen.set(room, n);
        const skip = (total.get(room) ?? 0) - (keepPerRoom.get(room) ?? 0);
        if (n <= skip || rec.message.ts < cutoff) return;
        kept.push(Buffer.from(line), Buffer.from('\n'));
        stats.add(rec.message);
        onRecord(rec);
      },
      onCorrupt: () => {},
      onBytes: r.countBytes,
    });
  } finally {
    await fh.close();
  }
  const data = Buffer.concat(kept);
  const tmp = `${path}.compact`;
  const out = await r.openFile(tmp);
  try {
    await out.truncate(0);
    await writeAll(out, data, 0);
    await out.datasync();
  } finally {
    await out.close();
  }
  await rename(tmp, path);
  const compacted = stats.toIndex(index.seq, data.length);
  await writeIndex(r.dir, compacted);
  await syncDir(r.dir);
  r.warn(`${path}: compacted from ${index.bytes} to ${data.length} bytes (retention)`);
  return compacted;
}
