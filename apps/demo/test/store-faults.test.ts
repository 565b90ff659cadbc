import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore, type RoomEvent, type StoredMessage } from '../src/store/index.js';
import { FaultyFs } from './helpers/faulty-fs.js';
import { logRecords } from './helpers/log-files.js';

// The file handle fails, stalls or short-writes on purpose: kill -9 cannot show a missing
// fdatasync (the page cache survives it), an injected handle can.

let dir: string;
let fs: FaultyFs;
let store: FileStore;
let warnings: string[];

function track<T>(p: Promise<T>) {
  const s: { done: boolean; ok?: boolean; value?: T; error?: Error & { code?: string } } = { done: false };
  p.then(
    (value) => Object.assign(s, { done: true, ok: true, value }),
    (error: Error) => Object.assign(s, { done: true, ok: false, error }),
  );
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function reopenTexts(room = 'r'): Promise<string[]> {
  const s = new FileStore({ dataDir: dir });
  await s.open();
  const texts = (await s.read(room, { after: '0-0', limit: 1000 })).messages.map((m) => m.text);
  await s.close();
  return texts;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-faults-'));
  fs = new FaultyFs();
  warnings = [];
  store = new FileStore({
    dataDir: dir,
    openFile: fs.open,
    probeIntervalMs: 30,
    stallMs: 100,
    onWarning: (w) => warnings.push(w),
  });
  await store.open();
});
afterEach(async () => {
  fs.sync = undefined;
  fs.write = undefined;
  fs.release();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('file store with a faulty disk', () => {
  it('does not acknowledge before datasync resolves, and reports a stalled sync as unhealthy', async () => {
    const seen: RoomEvent[] = [];
    store.subscribe('r', (e) => seen.push(e));
    fs.sync = 'stall';
    const a = track(store.append('r', 'n', 'one'));
    await until(() => fs.stalled === 1, 'the stalled datasync');
    const b = track(store.append('r', 'n', 'two')); // waits for the next group commit
    await sleep(300);
    expect(a.done).toBe(false);
    expect(b.done).toBe(false);
    expect(seen).toEqual([]);
    const h = await store.health();
    expect(h.ok).toBe(false);
    expect(h.error).toMatch(/stalled/);
    fs.sync = undefined;
    fs.release();
    await until(() => a.done && b.done, 'both acks');
    expect(a.ok && b.ok).toBe(true);
    expect(seen.map((e) => (e.kind === 'message' ? e.message.text : e.kind))).toEqual(['one', 'two']);
    expect((await store.health()).ok).toBe(true);
  });

  it('does not acknowledge while the write itself stalls', async () => {
    fs.write = 'stall';
    const a = track(store.append('r', 'n', 'one'));
    await until(() => fs.stalled === 1, 'the stalled write');
    await sleep(300);
    expect(a.done).toBe(false);
    expect(fs.syncsResolved).toBe(0);
    fs.write = undefined;
    fs.release();
    await until(() => a.done, 'the ack');
    expect(a.ok).toBe(true);
    expect(fs.syncsResolved).toBeGreaterThan(0);
  });

  it('acknowledges nothing when datasync fails, refuses appends until the disk recovers, keeps the log parseable', async () => {
    await store.append('r', 'n', 'before');
    const seen: string[] = [];
    store.subscribe('r', (e) => e.kind === 'message' && seen.push(e.message.text));
    fs.sync = 'fail';
    const failed = await store.append('r', 'n', 'lost-1').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(failed?.code).toBe('ERR_STORE_UNAVAILABLE');
    // Failed: refused at once, without touching the disk.
    const writesBefore = fs.handles.reduce((n, h) => n + h.calls.filter((c) => c === 'write').length, 0);
    await expect(store.append('r', 'n', 'lost-2')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    const writesAfter = fs.handles.reduce((n, h) => n + h.calls.filter((c) => c === 'write').length, 0);
    expect(writesAfter).toBe(writesBefore);
    const h = await store.health();
    expect(h.ok).toBe(false);
    expect(h.error).toMatch(/ENOSPC/);
    expect(seen).toEqual([]);
    // What is on disk: the acknowledged line only (the failed batch was cut off again).
    expect(logRecords(dir).map((r) => r.text)).toEqual(['before']);

    fs.sync = undefined;
    await until(async () => (await store.health()).ok, 'recovery by the probe');
    await store.append('r', 'n', 'after');
    expect(seen).toEqual(['after']);
    await store.close();
    expect(logRecords(dir).map((r) => r.text)).toEqual(['before', 'after']);
    expect(await reopenTexts()).toEqual(['before', 'after']);
  });

  it('after one failed datasync, cuts back and retries on a fresh handle, never writing the old one again', async () => {
    await store.append('r', 'n', 'before');
    fs.sync = 'fail';
    fs.failTimes = 1;
    const m = await store.append('r', 'n', 'retried');
    expect(m.text).toBe('retried');
    const failedHandle = fs.handles.find(
      (h) => h.calls.includes('datasync') && h.calls.at(-1) === 'datasync',
    );
    expect(failedHandle).toBeDefined();
    const last = fs.handles.at(-1)!;
    expect(last).not.toBe(failedHandle);
    expect(last.calls.slice(0, 2)).toEqual(['truncate', 'datasync']);
    await store.close();
    expect(logRecords(dir).map((r) => r.text)).toEqual(['before', 'retried']);
  });

  it('finishes short writes: every acknowledged message is whole on disk', async () => {
    fs.shortWrite = 5;
    const texts = Array.from({ length: 30 }, (_, i) => `msg ${i} ${'é'.repeat(i)} ✓`);
    const acked = await Promise.all(texts.map((t) => store.append('r', 'n', t)));
    expect(acked.map((m) => m.text)).toEqual(texts);
    await store.close();
    expect(logRecords(dir).map((r) => r.text)).toEqual(texts);
    expect(await reopenTexts()).toEqual(texts);
  });

  it('a short write followed by ENOSPC acknowledges nothing and leaves no partial line', async () => {
    await store.append('r', 'n', 'good');
    fs.shortWrite = 10;
    fs.shortThenFail = true;
    const r = track(store.append('r', 'n', 'x'.repeat(500)));
    await until(() => r.done, 'the failure');
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(logRecords(dir).map((x) => x.text)).toEqual(['good']);
    fs.write = undefined;
    fs.shortWrite = undefined;
    await until(async () => (await store.health()).ok, 'recovery by the probe');
    const later: StoredMessage = await store.append('r', 'n', 'later');
    expect(later.text).toBe('later');
    await store.close();
    expect(logRecords(dir).map((x) => x.text)).toEqual(['good', 'later']);
    expect(await reopenTexts()).toEqual(['good', 'later']);
    expect(warnings.join('\n')).not.toMatch(/corrupt/);
  });

  it('refuses appends beyond the queue bound while the disk is stuck, and acknowledges the rest later', async () => {
    await store.close();
    store = new FileStore({ dataDir: dir, openFile: fs.open, maxQueuedBytes: 2000, stallMs: 100 });
    await store.open();
    fs.sync = 'stall';
    const first = track(store.append('r', 'n', 'first'));
    await until(() => fs.stalled === 1, 'the stalled datasync');
    const queued = Array.from({ length: 40 }, (_, i) =>
      track(store.append('r', 'n', `q${i} ${'z'.repeat(80)}`)),
    );
    await sleep(50);
    const refused = queued.filter((q) => q.done && !q.ok);
    expect(refused.length).toBeGreaterThan(10);
    for (const q of refused) expect(q.error?.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(first.done).toBe(false);
    fs.sync = undefined;
    fs.release();
    await until(() => first.done && queued.every((q) => q.done), 'every answer');
    const accepted = queued.filter((q) => q.ok).map((q) => q.value!.text);
    expect(accepted.length).toBeGreaterThan(10);
    expect(accepted.length + refused.length).toBe(40);
    await store.close();
    expect(await reopenTexts()).toEqual(['first', ...accepted]);
  });

  it('an I/O error on write is reported with its code and nothing is acknowledged', async () => {
    fs.errorCode = 'EIO';
    fs.write = 'fail';
    await expect(store.append('r', 'n', 'x')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect((await store.health()).error).toMatch(/EIO/);
    fs.write = undefined;
    await until(async () => (await store.health()).ok, 'recovery by the probe');
    await store.close();
    expect(await reopenTexts()).toEqual([]);
  });
});
