import { createClient } from 'redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ChatCore, type ChatEvent } from '../src/chat/index.js';
import { RedisStore, type RedisStoreOptions } from '../src/store/redis-store.js';
import { type RoomEvent, type StoredMessage, StoreUnavailableError } from '../src/store/types.js';
import { waitFor } from './helpers/clients.js';
import { eventually, type RedisInstance, describeWithRedis, startRedis } from './helpers/redis.js';

/**
 * The Redis store on its own, two or three instances standing in for chat nodes, against a real
 * redis-server (AOF, fsync always). The process-level suite (scale-out.test.ts) runs real nodes.
 */

describeWithRedis('Redis store shared by several nodes', () => {
  let redis: RedisInstance;
  const stores: RedisStore[] = [];
  let prefixN = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await redis?.destroy();
  });

  /** Stores sharing a fresh key prefix, so tests do not see each other's rooms. */
  async function nodes(n: number, options: Partial<RedisStoreOptions> = {}): Promise<RedisStore[]> {
    const keyPrefix = `t${++prefixN}:`;
    const out: RedisStore[] = [];
    for (let i = 0; i < n; i++) {
      const s = new RedisStore({ url: redis.url, keyPrefix, nodeId: `p${prefixN}n${i}`, ...options });
      await s.open();
      stores.push(s);
      out.push(s);
    }
    return out;
  }

  function collect(store: RedisStore, room: string) {
    const events: RoomEvent[] = [];
    const unsubscribe = store.subscribe(room, (e) => events.push(e));
    const messages = () => events.filter((e) => e.kind === 'message').map((e) => e.message);
    return { events, messages, unsubscribe };
  }

  it('fans a message appended on one node out to members on every node, with one global id order', async () => {
    const [a, b, c] = await nodes(3);
    const subs = [collect(a!, 'lobby'), collect(b!, 'lobby'), collect(c!, 'lobby')];
    // Make sure every feed is positioned before appending (a join reads history first).
    for (const [i, s] of [a!, b!, c!].entries()) await s.read('lobby', { limit: 1 }).then(() => i);
    const sent: StoredMessage[] = [];
    for (let i = 0; i < 30; i++) sent.push(await [a!, b!, c!][i % 3]!.append('lobby', `u${i % 3}`, `m${i}`));
    const ids = sent.map((m) => m.id);
    for (const s of subs) {
      await waitFor('all 30 messages', () => s.messages().length >= 30);
      expect(s.messages().map((m) => m.id)).toEqual(ids);
    }
    const history = await b!.read('lobby', { limit: 100 });
    expect(history.messages.map((m) => m.text)).toEqual(sent.map((m) => m.text));
    const resumed = await c!.read('lobby', { after: ids[9]!, limit: 5 });
    expect(resumed.messages.map((m) => m.id)).toEqual(ids.slice(10, 15));
    expect(resumed.truncated).toBe(true);
    for (const s of subs) s.unsubscribe();
  });

  it('tells a resuming client when trimming (MAXLEN) dropped messages it missed', async () => {
    const [a] = await nodes(1, { maxLenPerRoom: 10 });
    const first = await a!.append('trim', 'ada', 'm0');
    let last = first;
    for (let i = 1; i < 400; i++) last = await a!.append('trim', 'ada', `m${i}`);
    const resumed = await a!.read('trim', { after: first.id, limit: 1000 });
    expect(resumed.truncated).toBe(true);
    expect(resumed.messages.length).toBeLessThan(399);
    expect(resumed.messages.at(-1)!.id).toBe(last.id);
    // A client that is up to date is not told anything is missing.
    const current = await a!.read('trim', { after: resumed.messages.at(-2)!.id, limit: 1000 });
    expect(current).toEqual({ messages: [last], truncated: false });
  });

  it('gives a nickname to one owner across nodes, case-insensitively, until released', async () => {
    const [a, b] = await nodes(2);
    expect(await a!.claimNick('Ada', 's1')).toBe(true);
    expect(await b!.claimNick('ada', 's9')).toBe(false);
    expect(await b!.nickTaken('ADA')).toBe(true);
    expect(await a!.claimNick('ADA', 's1')).toBe(true); // same owner: a case change keeps it
    await b!.releaseNick('ada', 's9'); // not the owner: no effect
    expect(await b!.claimNick('ada', 's9')).toBe(false);
    await a!.releaseNick('ada', 's1');
    expect(await b!.claimNick('ada', 's9')).toBe(true);
  });

  it('lists members of every node, and rooms with counts', async () => {
    const [a, b] = await nodes(2);
    await a!.addMember('lobby', 'ada');
    await b!.addMember('lobby', 'Bob');
    await b!.addMember('dev', 'bob');
    expect(await a!.members('lobby')).toEqual(['ada', 'Bob']);
    expect(await b!.rooms()).toEqual([
      { room: 'dev', members: 1 },
      { room: 'lobby', members: 2 },
    ]);
    await b!.removeMember('lobby', 'Bob');
    expect(await a!.members('lobby')).toEqual(['ada']);
  });

  it("drops a crashed node's members and nicknames within the TTL and announces them as leaving", async () => {
    const [a, b] = await nodes(2, { presenceTtlMs: 1500 });
    const seen = collect(a!, 'lobby');
    await a!.addMember('lobby', 'ada');
    await b!.addMember('lobby', 'bob');
    expect(await b!.claimNick('bob', 's1')).toBe(true);
    expect(await a!.members('lobby')).toEqual(['ada', 'bob']);
    // A crash: the node's connections vanish without any clean-up.
    crash(b!);
    const t0 = Date.now();
    await eventually('bob gone', async () => (await a!.members('lobby')).length === 1, 10_000);
    await waitFor('bob gone', () => seen.events.some((e) => e.kind === 'leave' && e.nick === 'bob'), 10_000);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(await a!.members('lobby')).toEqual(['ada']);
    // The heartbeat keeps ada, well past the TTL.
    await new Promise((r) => setTimeout(r, 1600));
    expect(await a!.members('lobby')).toEqual(['ada']);
    await eventually('nick freed', async () => !(await a!.nickTaken('bob')), 10_000);
    seen.unsubscribe();
  });

  it('stores a retried message once when the client repeats its id', async () => {
    const [a, b] = await nodes(2);
    const first = await a!.append('lobby', 'ada', 'hello', { clientId: 'c-1' });
    const again = await b!.append('lobby', 'ada', 'hello', { clientId: 'c-1' });
    const other = await a!.append('lobby', 'bob', 'hello', { clientId: 'c-1' }); // another sender
    expect(again.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    const { messages } = await a!.read('lobby', { limit: 10 });
    expect(messages.map((m) => m.id)).toEqual([first.id, other.id]);
  });

  it('routes direct messages and typing to the node holding the nickname', async () => {
    const [a, b] = await nodes(2);
    const got: string[] = [];
    const off = b!.subscribeDirect('Bob', (e) => got.push(`${e.from}:${e.text}`));
    const room = collect(b!, 'lobby');
    await eventually('dm subscribed', () =>
      a!.sendDirect({ kind: 'dm', from: 'ada', to: 'bob', text: 'x', ts: 1 }),
    );
    await waitFor('dm', () => got.length > 0);
    expect(got[0]).toBe('ada:x');
    expect(await a!.sendDirect({ kind: 'dm', from: 'ada', to: 'nobody', text: 'x', ts: 1 })).toBe(false);
    await eventually('typing', async () => {
      await a!.publish({ kind: 'typing', room: 'lobby', nick: 'ada', ts: 2 });
      return room.events.some((e) => e.kind === 'typing');
    });
    off();
    room.unsubscribe();
  });

  it('survives a Redis restart: appends wait and are stored once, feeds and pub/sub resume without gaps', async () => {
    const [a, b] = await nodes(2, { unavailableTimeoutMs: 15_000 });
    const feedA = collect(a!, 'flow');
    const feedB = collect(b!, 'flow');
    await a!.read('flow', { limit: 1 });
    await b!.read('flow', { limit: 1 });
    const dms: string[] = [];
    b!.subscribeDirect('bob', (e) => dms.push(e.text));

    const acked: StoredMessage[] = [];
    const failed: unknown[] = [];
    let stop = false;
    const sender = async (store: RedisStore, nick: string) => {
      for (let i = 0; !stop && i < 400; i++) {
        try {
          acked.push(await store.append('flow', nick, `${nick}-${i}`, { clientId: `${nick}-${i}` }));
        } catch (err) {
          failed.push(err);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const senders = [sender(a!, 'ada'), sender(b!, 'bob')];
    await waitFor('flow started', () => acked.length >= 20);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    await waitFor('flow resumed', () => acked.length >= 80, 20_000);
    stop = true;
    await Promise.all(senders);

    expect(failed).toEqual([]);
    const stored = (await a!.read('flow', { limit: 10_000 })).messages;
    const ids = stored.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(stored.map((m) => m.text)).size).toBe(stored.length);
    for (const m of acked) expect(ids).toContain(m.id);
    for (const feed of [feedA, feedB]) {
      await waitFor('feed caught up', () => feed.messages().length >= stored.length, 15_000);
      expect(feed.messages().map((m) => m.id)).toEqual(ids);
    }
    // Pub/sub was re-subscribed after the reconnect.
    await eventually('dm after restart', async () => {
      await a!.sendDirect({ kind: 'dm', from: 'ada', to: 'bob', text: 'after', ts: 3 });
      return dms.includes('after');
    });
    feedA.unsubscribe();
    feedB.unsubscribe();
  }, 60_000);

  it('gives members joining and resuming through the chat core every message once while Redis restarts', async () => {
    const [a, b] = await nodes(2, { unavailableTimeoutMs: 15_000 });
    const core = new ChatCore(a!, { historyOnJoin: 1000, maxReplay: 1000 });
    const received = (events: ChatEvent[]) =>
      events.flatMap((e) => (e.type === 'message' ? [e.message.id] : []));
    const early: ChatEvent[] = [];
    const steady = await core.connect('test', (e) => early.push(e), 'steady');
    await steady.join('busy');

    const acked: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 1000; i++) {
        acked.push((await b!.append('busy', 'w', `w${i}`, { clientId: `w${i}` })).id);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await waitFor('writing', () => acked.length >= 20);
    // One member leaves; it will resume from its last id while Redis is down.
    const resumerEvents: ChatEvent[] = [];
    const resumer = await core.connect('test', (e) => resumerEvents.push(e), 'resumer');
    await resumer.join('busy');
    const lastSeen = received(resumerEvents).at(-1)!;
    await resumer.leave('busy');

    await redis.stop('SIGKILL');
    // Joins started during the outage wait for Redis and then replay + go live without a seam.
    const lateEvents: ChatEvent[] = [];
    const joining = core.connect('test', (e) => lateEvents.push(e), 'late').then((s) => s.join('busy'));
    const resuming = resumer.join('busy', lastSeen);
    await new Promise((r) => setTimeout(r, 1000));
    await redis.start();
    await Promise.all([joining, resuming]);
    await waitFor('more after restart', () => acked.length >= 120, 20_000);
    stop = true;
    await writer;

    const stream = (await a!.read('busy', { limit: 10_000 })).messages.map((m) => m.id);
    expect(stream).toEqual(acked);
    for (const events of [early, lateEvents]) {
      await waitFor('caught up', () => received(events).at(-1) === stream.at(-1), 15_000);
      expect(received(events)).toEqual(stream.slice(stream.indexOf(received(events)[0]!)));
    }
    await waitFor('resumer caught up', () => received(resumerEvents).at(-1) === stream.at(-1), 15_000);
    const afterResume = received(resumerEvents).slice(received(resumerEvents).indexOf(lastSeen) + 1);
    expect(afterResume).toEqual(stream.slice(stream.indexOf(lastSeen) + 1));
    expect(received(early)[0]).toBe(stream[0]);
    await core.shutdown();
  }, 60_000);

  it('joins without duplicates while the live feed lags behind the history read', async () => {
    const [a, b] = await nodes(2);
    const core = new ChatCore(a!, { historyOnJoin: 100 });
    const received = (events: ChatEvent[]) =>
      events.flatMap((e) => (e.type === 'message' ? [e.message.id] : []));
    const steadyEvents: ChatEvent[] = [];
    const steady = await core.connect('test', (e) => steadyEvents.push(e), 'steady');
    await steady.join('lag');
    for (let i = 0; i < 3; i++) await b!.append('lag', 'w', `before ${i}`);
    await waitFor('steady live', () => received(steadyEvents).length === 3);
    // Cut node A's blocking reader and keep it out for a moment (Redis refuses new connections),
    // so messages appended now reach A's live feed only after the next member's history read
    // already returned them.
    const letIn = await cutOff(redis.url, `chat-${a!.node}-read`);
    let late: Awaited<ReturnType<typeof core.connect>>;
    const lateEvents: ChatEvent[] = [];
    try {
      for (let i = 0; i < 5; i++) await b!.append('lag', 'w', `during ${i}`);
      late = await core.connect('test', (e) => lateEvents.push(e), 'late');
      const joined = late.join('lag');
      await new Promise((r) => setTimeout(r, 200));
      await letIn();
      await joined;
    } finally {
      await letIn();
    }
    await b!.append('lag', 'w', 'after');
    await waitFor('late live', () => received(lateEvents).length >= 9, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const stream = (await a!.read('lag', { limit: 100 })).messages.map((m) => m.id);
    expect(received(lateEvents)).toEqual(stream);
    expect(received(steadyEvents)).toEqual(stream);
    await core.shutdown();
  });

  it('fails appends with a retryable error when Redis stays away, and works again once it is back', async () => {
    const [a] = await nodes(1, { unavailableTimeoutMs: 800 });
    await a!.append('lobby', 'ada', 'before');
    await redis.stop();
    try {
      const err = await a!.append('lobby', 'ada', 'during', { clientId: 'x1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      // OUTCOME_UNKNOWN when the append went out on the socket Redis was closing (it cannot tell).
      expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_OUTCOME_UNKNOWN']).toContain(
        (err as StoreUnavailableError).code,
      );
      expect((err as StoreUnavailableError).retryable).toBe(true);
    } finally {
      await redis.start();
    }
    await eventually('reconnected', async () => {
      try {
        await a!.append('lobby', 'ada', 'during', { clientId: 'x1' });
        return true;
      } catch {
        return false;
      }
    });
    const texts = (await a!.read('lobby', { limit: 10 })).messages.map((m) => m.text);
    expect(texts.slice(-2)).toEqual(['before', 'during']);
  }, 30_000);
});

/**
 * Drop one named client connection server-side and refuse new connections (maxclients = the
 * clients left) until the returned function is called: a network blip that lasts.
 */
async function cutOff(url: string, name: string): Promise<() => Promise<void>> {
  const c = createClient({ url, RESP: 2 });
  c.on('error', () => {});
  await c.connect();
  const original = ((await c.sendCommand(['CONFIG', 'GET', 'maxclients'])) as string[])[1]!;
  const list = String(await c.sendCommand(['CLIENT', 'LIST']));
  const lines = list.split('\n').filter((l) => l.trim() !== '');
  const line = lines.find((l) => l.includes(` name=${name} `));
  const id = line ? /\bid=(\d+)/.exec(line)?.[1] : undefined;
  if (!id) throw new Error(`no client named ${name}`);
  await c.sendCommand(['CONFIG', 'SET', 'maxclients', String(lines.length - 1)]);
  await c.sendCommand(['CLIENT', 'KILL', 'ID', id]);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await c.sendCommand(['CONFIG', 'SET', 'maxclients', original]);
    await c.close();
  };
}

/** Simulate kill -9 of a node: its sockets die, nothing is cleaned up, no heartbeat any more. */
function crash(store: RedisStore): void {
  const s = store as unknown as Record<string, { client: { destroy(): void } } | { close(): Promise<void> }>;
  const presence = s.presence as unknown as { timer: NodeJS.Timeout };
  clearInterval(presence.timer);
  for (const name of ['cmd', 'blocking', 'sub'])
    (s[name] as { client: { destroy(): void } }).client.destroy();
}
