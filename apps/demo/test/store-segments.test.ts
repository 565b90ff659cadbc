import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.js';
import { compareIds, FileStore } from '../src/store/index.js';
import { parseRetention, planSegments } from '../src/store/retention.js';
import { logFiles, logRecords } from './helpers/log-files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chat-seg-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const line = (id: string, room: string, text: string, ts: number) =>
  `${JSON.stringify({ id, room, nick: 'n', text, ts })}\n`;

async function texts(store: FileStore, room: string): Promise<string[]> {
  return (await store.read(room, { after: '0-0', limit: 100_000 })).messages.map((m) => m.text);
}

describe('retention setting', () => {
  it('parses messages per room and/or days, and refuses anything else', () => {
    expect(parseRetention('10000')).toEqual({ messages: 10000, days: undefined });
    expect(parseRetention('30d')).toEqual({ messages: 10000, days: 30 });
    expect(parseRetention('500, 7d')).toEqual({ messages: 500, days: 7 });
    for (const bad of ['0', 'abc', '5d,6d', '1.5', '', '10,20', '-3']) {
      expect(typeof parseRetention(bad)).toBe('string');
    }
  });

  it('is a server flag and an environment variable; other flags keep working', () => {
    expect(parseConfig(['--retention', '500,2d', '--history', '7'], {})).toMatchObject({
      retention: { messages: 500, days: 2 },
      history: 7,
    });
    expect(parseConfig([], { CHAT_RETENTION: '3d' })).toMatchObject({ retention: { days: 3 } });
    expect(parseConfig([], {})).toMatchObject({ retention: { messages: 10000 } });
    expect(() => parseConfig(['--retention', 'forever'], {})).toThrow(ConfigError);
  });

  it('plans from indexes alone: newest first until each room has enough', () => {
    const seg = (seq: number, rooms: [string, number][], maxTs = 1000) => ({
      v: 1 as const,
      seq,
      bytes: 100,
      count: rooms.reduce((n, [, c]) => n + c, 0),
      last: `${seq}-0`,
      maxTs,
      rooms,
    });
    const sealed = [
      seg(1, [
        ['quiet', 1],
        ['busy', 99],
      ]),
      seg(2, [['busy', 100]]),
      seg(3, [['busy', 100]]),
    ];
    const plan = planSegments(sealed, new Map([['busy', 50]]), { messages: 120 }, 2000);
    // busy: 50 in the active segment + 70 of seg 3 make 120, so seg 2 holds nothing anyone needs...
    expect(plan.drop.map((s) => s.seq)).toEqual([2]);
    // ...but quiet's only message pins seg 1, which is then mostly dead weight: compact it.
    expect(plan.keep.map((s) => s.seq)).toEqual([1, 3]);
    expect([...plan.compact.keys()]).toEqual([1]);
    expect(plan.compact.get(1)).toEqual(new Map([['quiet', 1]]));
    expect(plan.truncatedRooms).toEqual(new Set(['busy']));
    const byAge = planSegments(sealed, new Map(), { messages: 10_000, days: 1 }, 1000 + 2 * 86_400_000);
    expect(byAge.keep).toEqual([]);
  });
});

describe('segmented log', () => {
  it('rotates at the segment size, indexes sealed segments and reads them all back in order', async () => {
    const s = new FileStore({ dataDir: dir, segmentBytes: 2048 });
    await s.open();
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) {
      sent.push(`m${i}`);
      await s.append(i % 2 ? 'a' : 'b', 'n', `m${i}`);
    }
    await s.close();
    const names = readdirSync(join(dir, 'log'));
    expect(names.filter((n) => n.endsWith('.log')).length).toBeGreaterThan(3);
    expect(names.filter((n) => n.endsWith('.idx')).length).toBe(
      names.filter((n) => n.endsWith('.log')).length - 1,
    );
    const r = new FileStore({ dataDir: dir, segmentBytes: 2048 });
    await r.open();
    expect(await texts(r, 'a')).toEqual(sent.filter((_, i) => i % 2));
    expect(await texts(r, 'b')).toEqual(sent.filter((_, i) => i % 2 === 0));
    await r.close();
  });

  it('rebuilds a missing, corrupt or stale index from its segment instead of trusting it', async () => {
    const s = new FileStore({ dataDir: dir, segmentBytes: 1024 });
    await s.open();
    const sent: string[] = [];
    for (let i = 0; i < 60; i++) {
      sent.push(`m${i}`);
      await s.append('r', 'n', `m${i}`);
    }
    await s.close();
    const logDir = join(dir, 'log');
    writeFileSync(join(logDir, '0000000001.idx'), '{"v":1,"seq":1,');
    // Claims far fewer messages than the file holds: a rewrite that crashed before its index.
    writeFileSync(
      join(logDir, '0000000002.idx'),
      JSON.stringify({ v: 1, seq: 2, bytes: 10, count: 1, last: '1-0', maxTs: 1, rooms: [['r', 1]] }),
    );
    rmSync(join(logDir, '0000000003.idx'));
    const warnings: string[] = [];
    const r = new FileStore({
      dataDir: dir,
      segmentBytes: 1024,
      retention: { messages: 55 },
      onWarning: (w) => warnings.push(w),
    });
    await r.open();
    expect((await texts(r, 'r')).slice(-55)).toEqual(sent.slice(-55));
    await r.close();
    expect(warnings.filter((w) => /rebuilding/.test(w)).length).toBe(3);
    for (const seq of [1, 2, 3]) {
      const name = String(seq).padStart(10, '0');
      if (!existsSync(join(logDir, `${name}.log`))) continue;
      const idx = JSON.parse(readFileSync(join(logDir, `${name}.idx`), 'utf8')) as { bytes: number };
      expect(idx.bytes).toBe(statSync(join(logDir, `${name}.log`)).size);
    }
  });

  it('drops segments past retention while running, keeping every room its newest messages', async () => {
    const s = new FileStore({ dataDir: dir, segmentBytes: 2048, retention: { messages: 30 } });
    await s.open();
    await s.append('quiet', 'n', 'only one');
    for (let i = 0; i < 600; i++) await s.append('busy', 'n', `m${i}`);
    await s.close();
    const onDisk = logRecords(dir);
    // Bounded: about the retained 30 plus what shares their segments, not all 600.
    expect(onDisk.filter((r) => r.room === 'busy').length).toBeLessThan(150);
    const r = new FileStore({ dataDir: dir, segmentBytes: 2048, retention: { messages: 30 } });
    await r.open();
    const busy = await texts(r, 'busy');
    expect(busy.slice(-30)).toEqual(Array.from({ length: 30 }, (_, i) => `m${570 + i}`));
    expect(await texts(r, 'quiet')).toEqual(['only one']);
    // A resume from before the dropped part is told it missed messages.
    expect((await r.read('busy', { after: '0-0', limit: 10 })).truncated).toBe(true);
    await r.close();
  });

  it('reads at start only what retention keeps, however long the history (bytes read are counted)', async () => {
    // History written with retention off (as a big old log would be), then a start with 50 per room.
    const big = new FileStore({ dataDir: dir, segmentBytes: 8192, retention: { messages: 1_000_000 } });
    await big.open();
    await big.append('quiet', 'n', 'pinned in the first segment');
    const pad = 'p'.repeat(100);
    for (let i = 0; i < 3000; i++) await big.append(`room${i % 3}`, 'n', `${i} ${pad}`);
    await big.close();
    const total = logFiles(dir).reduce((n, f) => n + statSync(f).size, 0);
    expect(total).toBeGreaterThan(350_000);

    const opts = { dataDir: dir, segmentBytes: 8192, retention: { messages: 50 } };
    const first = new FileStore(opts);
    await first.open(); // drops and compacts
    await first.close();
    const second = new FileStore(opts);
    await second.open();
    // 3 rooms x 50 x ~150 bytes, plus at most one partly needed segment per room and the active one.
    const bound = 3 * 50 * 160 + 4 * 8192 + 8192;
    expect(second.bytesRead).toBeLessThan(bound);
    expect(second.bytesRead).toBeLessThan(total / 5);
    expect(await texts(second, 'quiet')).toEqual(['pinned in the first segment']);
    for (let r = 0; r < 3; r++) {
      const t = await texts(second, `room${r}`);
      expect(t.slice(-50).map((x) => Number(x.split(' ')[0]))).toEqual(
        Array.from({ length: 50 }, (_, i) => 3000 - 150 + i * 3 + r),
      );
    }
    await second.close();
  });

  it('drops segments older than the age limit at start', async () => {
    const logDir = join(dir, 'log');
    mkdirSync(logDir, { recursive: true });
    const old = Date.now() - 10 * 86_400_000;
    const now = Date.now();
    writeFileSync(join(logDir, '0000000001.log'), line(`${old}-0`, 'r', 'old', old));
    writeFileSync(join(logDir, '0000000002.log'), line(`${now}-0`, 'r', 'new', now));
    writeFileSync(join(logDir, '0000000003.log'), '');
    const s = new FileStore({ dataDir: dir, retention: { messages: 100, days: 1 } });
    await s.open();
    expect(await texts(s, 'r')).toEqual(['new']);
    expect((await s.read('r', { after: '0-0', limit: 5 })).truncated).toBe(true);
    await s.close();
    expect(existsSync(join(logDir, '0000000001.log'))).toBe(false);
    expect(existsSync(join(logDir, '0000000002.idx'))).toBe(true);
  });
});

describe('migration from the single log of older versions', () => {
  it('loads an old messages.log (torn tail cut) and keeps appending in segments', async () => {
    writeFileSync(
      join(dir, 'messages.log'),
      `${line('1-0', 'r', 'x', 1)}GARBAGE\n${line('2-0', 'r', 'y', 2)}{"id":"3-0","ro`,
    );
    const warnings: string[] = [];
    const s = new FileStore({ dataDir: dir, onWarning: (w) => warnings.push(w) });
    await s.open();
    expect(await texts(s, 'r')).toEqual(['x', 'y']);
    const z = await s.append('r', 'n', 'z');
    expect(compareIds(z.id, '2-0')).toBe(1);
    await s.close();
    expect(existsSync(join(dir, 'messages.log'))).toBe(false);
    expect(warnings.join('\n')).toMatch(/moved .*messages\.log/);
    const r = new FileStore({ dataDir: dir });
    await r.open();
    expect(await texts(r, 'r')).toEqual(['x', 'y', 'z']);
    await r.close();
  });

  it('seals an old log larger than a segment instead of rereading it at every start', async () => {
    let data = '';
    for (let i = 0; i < 400; i++) data += line(`${i + 1}-0`, `room${i % 4}`, `t${i}`, i + 1);
    writeFileSync(join(dir, 'messages.log'), data);
    const opts = { dataDir: dir, segmentBytes: 4096, retention: { messages: 20 } };
    const s = new FileStore(opts);
    await s.open();
    expect((await texts(s, 'room1')).slice(-20)).toEqual(
      Array.from({ length: 20 }, (_, i) => `t${321 + i * 4}`),
    );
    await s.close();
    expect(existsSync(join(dir, 'log', '0000000001.idx'))).toBe(true);
    const again = new FileStore(opts);
    await again.open();
    // Compacted to the 4 x 20 retained lines.
    expect(again.bytesRead).toBeLessThan(data.length / 3);
    expect((await texts(again, 'room3')).slice(-20)).toEqual(
      Array.from({ length: 20 }, (_, i) => `t${323 + i * 4}`),
    );
    await again.close();
  });
});

describe('permissions', () => {
  it('creates the data directory 0700 and log files 0600, whatever the umask', async () => {
    const old = process.umask(0);
    try {
      const dataDir = join(dir, 'nested', 'data');
      const s = new FileStore({ dataDir, segmentBytes: 1024 });
      await s.open();
      for (let i = 0; i < 30; i++) await s.append('r', 'n', `message ${i}`);
      await s.close();
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dataDir, 'log')).mode & 0o777).toBe(0o700);
      const files = readdirSync(join(dataDir, 'log'));
      expect(files.some((f) => f.endsWith('.idx'))).toBe(true);
      for (const f of files) expect([f, statSync(join(dataDir, 'log', f)).mode & 0o777]).toEqual([f, 0o600]);
    } finally {
      process.umask(old);
    }
  });
});
