import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RateLimiter as BucketTable } from '@net/security';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChatEvent, ChatCore, type ChatCoreOptions } from '../src/chat/index.js';
import { FileStore } from '../src/store/index.js';

// Issue 16, "Abuse": the chat core's limits, one real file store per test.
const open: { core: ChatCore; store: FileStore; dir: string }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.core.shutdown();
    await o.store.close();
    rmSync(o.dir, { recursive: true, force: true });
  }
});

/** Like server.ts: per-connection buckets in one shared, bounded table. */
function limiterFactory(rate: number, burst: number) {
  const table = new BucketTable({ capacity: burst, refillPerSecond: rate, maxKeys: 100_000 });
  let n = 0;
  return () => {
    const key = String(++n);
    return {
      tryTake: () => table.take(key),
      retryAfterMs: () => table.retryAfterMs(key),
      release: () => void table.delete(key),
    };
  };
}

async function makeCore(options: ChatCoreOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'chat-abuse-'));
  const store = new FileStore({ dataDir: dir });
  await store.open();
  const core = new ChatCore(store, { historyOnJoin: 0, ...options });
  open.push({ core, store, dir });
  return Object.assign(core, { fileStore: store });
}

function sink() {
  const events: ChatEvent[] = [];
  return { events, fn: (e: ChatEvent) => void events.push(e) };
}

describe('rate limits cannot be bypassed by changing nick', () => {
  it('limits nick changes per session', async () => {
    const core = await makeCore({ rateLimiter: limiterFactory(5, 10) });
    const s = await core.connect('tcp', () => {}, 'ren0');
    let limited = 0;
    for (let i = 1; i <= 40; i++) {
      try {
        await s.setNick(`ren${i}`);
      } catch (err) {
        expect((err as { code: string }).code).toBe('RATE_LIMITED');
        limited++;
      }
    }
    // The documented budget: 5 renames at once, then one every 5 s.
    expect(40 - limited).toBeLessThanOrEqual(6);
  });

  it('limits token issue per session (/token)', async () => {
    const core = await makeCore({ rateLimiter: limiterFactory(5, 10) });
    const s = await core.connect('tcp', () => {}, 'tok');
    let allowed = 0;
    for (let i = 0; i < 40; i++) {
      try {
        s.takeControl();
        allowed++;
      } catch (err) {
        expect((err as { code: string }).code).toBe('RATE_LIMITED');
      }
    }
    expect(allowed).toBeLessThanOrEqual(6);
  });

  it('keys HTTP posts by session and client address, not by nick', async () => {
    const core = await makeCore({ rateLimiter: limiterFactory(5, 10) });
    let accepted = 0;
    for (let i = 0; i < 60; i++) {
      try {
        // One client (one session id, one address) with a new nick on every post.
        await core.post('http', `nick${i}`, `room${i}`, 'x', undefined, { sid: 's1', address: '10.0.0.1' });
        accepted++;
      } catch (err) {
        expect((err as { code: string }).code).toBe('RATE_LIMITED');
      }
    }
    expect(accepted).toBeLessThanOrEqual(12);
  });

  it('evicts the least recently used HTTP bucket instead of clearing the table', async () => {
    // Refill so slow that a bucket only fills up again if the table forgets it.
    const core = await makeCore({ rateLimiter: limiterFactory(0.001, 2) });
    const hot = { sid: 'hot', address: '10.9.9.9' };
    await core.post('http', 'hot', 'lobby', 'a', undefined, hot);
    await core.post('http', 'hot', 'lobby', 'b', undefined, hot);
    await expect(core.post('http', 'hot', 'lobby', 'c', undefined, hot)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
    // From here on appends fail fast (the limiter is consulted before the store): only the
    // limiter's verdict on the hot client matters, and 10,500 fsyncs would take a minute.
    await core.fileStore.close();
    const verdicts = new Set<string>();
    for (let i = 0; i < 10_500; i++) {
      await core
        .post('http', `n${i}`, 'lobby', 'x', undefined, {
          sid: `s${i}`,
          address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
        })
        .catch(() => {});
      if (i % 100 === 0) {
        // The hot client keeps trying: it stays recently used and so keeps its empty bucket.
        await core.post('http', 'hot', 'lobby', 'again', undefined, hot).then(
          () => verdicts.add('accepted'),
          (err: { code: string }) => verdicts.add(err.code),
        );
      }
    }
    expect([...verdicts]).toEqual(['RATE_LIMITED']);
  }, 60_000);
});

describe('notice floods', () => {
  it('throttles rename notices per session', async () => {
    // No message rate limiter here: only the notice throttle is under test.
    const core = await makeCore({ nickChangeBurst: 1000 });
    const watcher = sink();
    const w = await core.connect('tcp', watcher.fn, 'watcher');
    await w.join('lobby');
    const flooder = await core.connect('tcp', () => {}, 'f0');
    await flooder.join('lobby');
    for (let i = 1; i <= 100; i++) await flooder.setNick(`f${i}`);
    await new Promise((r) => setTimeout(r, 50));
    const renames = watcher.events.filter((e) => e.type === 'rename').length;
    expect(renames).toBeLessThanOrEqual(12);
    // The member list still has the real nick.
    expect(await w.who('lobby')).toContain('f100');
  });

  it('throttles join/leave notices per session', async () => {
    // A generous join bucket: this test is about notices, not about the join rate limit.
    const core = await makeCore({ joinBurst: 1000 });
    const watcher = sink();
    const w = await core.connect('tcp', watcher.fn, 'watcher');
    await w.join('busy');
    const flooder = await core.connect('tcp', () => {}, 'hopper');
    for (let i = 0; i < 100; i++) {
      await flooder.join('busy');
      await flooder.leave('busy');
    }
    await new Promise((r) => setTimeout(r, 50));
    const notices = watcher.events.filter((e) => e.type === 'join' || e.type === 'leave').length;
    expect(notices).toBeLessThanOrEqual(12);
  });

  it('applies the member limit to rename notices', async () => {
    const core = await makeCore({ presenceNoticeLimit: 2 });
    const watcher = sink();
    const w = await core.connect('tcp', watcher.fn, 'watcher');
    await w.join('big');
    const a = await core.connect('tcp', () => {}, 'a1');
    await a.join('big');
    const b = await core.connect('tcp', () => {}, 'b1');
    await b.join('big');
    await b.setNick('b2');
    await new Promise((r) => setTimeout(r, 50));
    expect(watcher.events.filter((e) => e.type === 'rename')).toEqual([]);
  });
});

describe('rooms are bounded', () => {
  it('caps the number of rooms (ROOM_LIMIT), existing rooms stay joinable', async () => {
    const core = await makeCore({ maxRooms: 3 });
    const s = await core.connect('tcp', () => {}, 'maker');
    await s.join('lobby');
    await s.join('r1');
    await s.join('r2');
    await expect(s.join('r3')).rejects.toMatchObject({ code: 'ROOM_LIMIT' });
    await expect(core.post('http', 'maker', 'r4', 'x')).rejects.toMatchObject({ code: 'ROOM_LIMIT' });
    await s.join('r1');
    await core.post('http', 'maker', 'r2', 'fine');
  });

  it('expires empty idle rooms from memory, which frees their slot', async () => {
    let now = 1_000_000;
    const core = await makeCore({ maxRooms: 3, roomIdleMs: 60_000, now: () => now });
    const s = await core.connect('tcp', () => {}, 'maker');
    await s.join('r1');
    await s.join('r2');
    await core.post('http', 'maker', 'r2', 'one message');
    await s.leave('r2');
    await expect(s.join('r3')).rejects.toMatchObject({ code: 'ROOM_LIMIT' });
    now += 61_000;
    await core.expireIdleRooms();
    expect((await core.rooms()).map((r) => r.room)).not.toContain('r2');
    // r1 still has a member: it stays.
    expect((await core.rooms()).map((r) => r.room)).toContain('r1');
    await s.join('r3');
  });

  it('answers STORE_FAILED while the store cannot list rooms, and recovers', async () => {
    const core = await makeCore({ maxRooms: 3 });
    const rooms = core.fileStore.rooms.bind(core.fileStore);
    let fail = true;
    core.fileStore.rooms = () => (fail ? Promise.reject(new Error('store away')) : rooms());
    const s = await core.connect('tcp', () => {}, 'maker');
    await expect(s.join('r1')).rejects.toMatchObject({ code: 'STORE_FAILED' });
    fail = false;
    await s.join('r1');
    expect(s.rooms).toContain('r1');
  });

  it('pages the room list', async () => {
    const core = await makeCore();
    const s = await core.connect('tcp', () => {}, 'maker');
    for (let i = 0; i < 15; i++) await s.join(`p${String(i).padStart(2, '0')}`).catch(() => {});
    const first = await core.roomPage({ limit: 5 });
    expect(first.rooms.map((r) => r.room)).toEqual(['lobby', 'p00', 'p01', 'p02', 'p03']);
    expect(first.next).toBe('p03');
    const second = await core.roomPage({ after: first.next, limit: 5 });
    expect(second.rooms[0]!.room).toBe('p04');
  });
});
