import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChatCore, type ChatEvent, ChatError, type RateLimiter } from '../src/chat/index.js';
import { FileStore } from '../src/store/index.js';

let dir: string;
let store: FileStore;
let core: ChatCore;

function collector() {
  const events: ChatEvent[] = [];
  return { events, sink: (e: ChatEvent) => events.push(e) };
}
const texts = (events: ChatEvent[]) =>
  events.flatMap((e) => (e.type === 'message' ? [`${e.message.nick}:${e.message.text}`] : []));

function countingLimiter(capacity: number): () => RateLimiter {
  return () => {
    let left = capacity;
    return { tryTake: () => left-- > 0, retryAfterMs: () => 500 };
  };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-core-'));
  store = new FileStore({ dataDir: dir });
  await store.open();
  core = new ChatCore(store, { historyOnJoin: 5, maxMessageLength: 50, rateLimiter: countingLimiter(20) });
});
afterEach(async () => {
  await core.shutdown();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chat core', () => {
  it('delivers a room message to every member and acks with an ordered id', async () => {
    const a = collector();
    const b = collector();
    const alice = await core.connect('test', a.sink, 'alice');
    const bob = await core.connect('test', b.sink, 'bob');
    await alice.join('lobby');
    await bob.join('lobby');
    const m1 = await alice.say('lobby', 'hi bob');
    const m2 = await bob.say('lobby', 'hi alice');
    expect(m1.id < m2.id || m1.ts < m2.ts || m1.id !== m2.id).toBe(true);
    expect(texts(a.events)).toEqual(['alice:hi bob', 'bob:hi alice']);
    expect(texts(b.events)).toEqual(['alice:hi bob', 'bob:hi alice']);
    expect(a.events.some((e) => e.type === 'join' && e.nick === 'bob')).toBe(true);
  });

  it('refuses a nickname that differs only in case', async () => {
    await core.connect('test', () => {}, 'Alice');
    await expect(core.connect('test', () => {}, 'aLICE')).rejects.toMatchObject({ code: 'NICK_TAKEN' });
    const guest = await core.connect('test', () => {});
    await expect(guest.setNick('ALICE')).rejects.toMatchObject({ code: 'NICK_TAKEN' });
    expect(guest.nick).toMatch(/^guest\d+$/);
  });

  it('releases a nickname when its session closes', async () => {
    const s = await core.connect('test', () => {}, 'carol');
    await s.close();
    await expect(core.connect('test', () => {}, 'CAROL')).resolves.toBeDefined();
  });

  it('lists members and rooms with counts, and announces leaves and renames', async () => {
    const a = collector();
    const alice = await core.connect('test', a.sink, 'alice');
    const bob = await core.connect('test', () => {}, 'bob');
    await alice.join('lobby');
    await bob.join('lobby');
    await bob.join('Dev');
    expect(await alice.who('lobby')).toEqual(['alice', 'bob']);
    const rooms = await core.rooms();
    expect(rooms).toContainEqual({ room: 'lobby', members: 2 });
    expect(rooms).toContainEqual({ room: 'dev', members: 1 });
    await bob.setNick('robert');
    await bob.leave('lobby');
    expect(a.events).toContainEqual(expect.objectContaining({ type: 'rename', from: 'bob', to: 'robert' }));
    expect(a.events).toContainEqual(expect.objectContaining({ type: 'leave', nick: 'robert' }));
    expect(await alice.who('lobby')).toEqual(['alice']);
  });

  it('sends direct messages only to the addressee and reports unknown nicks', async () => {
    const a = collector();
    const b = collector();
    const alice = await core.connect('test', a.sink, 'alice');
    await core.connect('test', b.sink, 'bob');
    await alice.dm('BOB', 'psst');
    expect(b.events).toContainEqual(expect.objectContaining({ type: 'dm', from: 'alice', text: 'psst' }));
    expect(a.events.some((e) => e.type === 'dm')).toBe(false);
    await expect(alice.dm('nobody', 'x')).rejects.toMatchObject({ code: 'NO_SUCH_NICK' });
  });

  it('enforces length, emptiness, control characters and membership', async () => {
    const alice = await core.connect('test', () => {}, 'alice');
    await alice.join('lobby');
    await expect(alice.say('lobby', 'x'.repeat(51))).rejects.toMatchObject({ code: 'TEXT_TOO_LONG' });
    await expect(alice.say('lobby', '   ')).rejects.toMatchObject({ code: 'TEXT_EMPTY' });
    await expect(alice.say('lobby', 'evil \u001b[2J')).rejects.toMatchObject({ code: 'TEXT_INVALID' });
    await expect(alice.say('other', 'hi')).rejects.toMatchObject({ code: 'NOT_IN_ROOM' });
    await expect(alice.join('bad room!')).rejects.toBeInstanceOf(ChatError);
  });

  it('answers a flood with a "slow down" error instead of dropping silently', async () => {
    const alice = await core.connect('test', () => {}, 'alice');
    await alice.join('lobby');
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => alice.say('lobby', `m${i}`)),
    );
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    expect(rejected).toHaveLength(5);
    const reason = (rejected[0] as PromiseRejectedResult).reason as ChatError;
    expect(reason.code).toBe('RATE_LIMITED');
    expect(reason.message).toMatch(/slow down/);
  });

  it('replays recent history on join and exactly the missed messages on resume', async () => {
    const alice = await core.connect('test', () => {}, 'alice');
    await alice.join('lobby');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await alice.say('lobby', `m${i}`)).id);
    const fresh = collector();
    const bob = await core.connect('test', fresh.sink, 'bob');
    await bob.join('lobby');
    expect(texts(fresh.events)).toEqual(['alice:m3', 'alice:m4', 'alice:m5', 'alice:m6', 'alice:m7']);
    const resumed = collector();
    const carol = await core.connect('test', resumed.sink, 'carol');
    await carol.join('lobby', ids[5]);
    expect(texts(resumed.events)).toEqual(['alice:m6', 'alice:m7']);
    expect(resumed.events.at(-2)).toMatchObject({ type: 'history-end', count: 2, truncated: false });
  });

  it('delivers messages sent during a replay once, after the replay, in order', async () => {
    const alice = await core.connect('test', () => {}, 'alice');
    await alice.join('lobby');
    const first = await alice.say('lobby', 'before');
    const c = collector();
    const bob = await core.connect('test', c.sink, 'bob');
    const joining = bob.join('lobby', '0-0');
    const during = alice.say('lobby', 'during');
    await Promise.all([joining, during]);
    await alice.say('lobby', 'after');
    expect(texts(c.events)).toEqual(['alice:before', 'alice:during', 'alice:after']);
    expect(first.id).toBeTruthy();
  });
});
