import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type Frame, TcpTestClient, waitFor, WsTestClient } from './helpers/clients.js';
import {
  eventually,
  type RedisInstance,
  describeWithRedis,
  redisAvailable,
  startRedis,
} from './helpers/redis.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Several real chat nodes (`node dist/server.js --redis ...`) behind one real redis-server:
 * users on different nodes and transports share rooms, presence and nicknames; a node killed with
 * SIGKILL loses nobody's messages; a Redis crash during a steady flow loses and duplicates nothing.
 */
const HAVE_REDIS = redisAvailable();

let redis: RedisInstance;
const running: RunningServer[] = [];
const clients: { close(): Promise<void> }[] = [];

async function node(): Promise<RunningServer> {
  const s = await startServer({ args: ['--redis', redis.url, '--rate', '200', '--burst', '200'] });
  running.push(s);
  return s;
}

async function ws(s: RunningServer, nick: string, room = 'lobby'): Promise<WsTestClient> {
  const c = await WsTestClient.open(s.urls.http!, { nick, room });
  clients.push(c);
  return c;
}

async function tcp(s: RunningServer, nick: string): Promise<TcpTestClient> {
  const c = await TcpTestClient.open(s.port('tcp'), nick);
  clients.push(c);
  return c;
}

/** Send one room message and wait for its ack (or error) by ref. */
async function say(c: WsTestClient, text: string, ref: string, room = 'lobby'): Promise<Frame> {
  c.send({ type: 'send', room, text, ref });
  return waitFor(
    `reply to ${ref}`,
    () => c.frames.find((f) => f.ref === ref && (f.type === 'ack' || f.type === 'error')),
    20_000,
  );
}

function liveTexts(c: WsTestClient): string[] {
  return c
    .messages()
    .filter((m) => !m.replay)
    .map((m) => String(m.text));
}

beforeAll(async () => {
  if (HAVE_REDIS) redis = await startRedis();
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(running.splice(0).map((s) => s.stop('SIGKILL')));
  // Killed nodes leave nicknames and members behind until their TTL: start each test clean.
  if (redis?.running()) {
    const c = createClient({ url: redis.url, RESP: 2 });
    c.on('error', () => {});
    await c.connect();
    await c.sendCommand(['FLUSHALL']);
    await c.close();
  }
});
afterAll(async () => {
  await redis?.destroy();
});

describeWithRedis('several chat nodes on one Redis', () => {
  it('lets users on three nodes (WebSocket and TCP) chat in one room, share who, nicknames, history and resume', async () => {
    const [a, b, c] = await Promise.all([node(), node(), node()]);
    expect(a!.stdout()).toMatch(/^store redis redis:\/\/127\.0\.0\.1:\d+\/? node \S+$/m);
    const ada = await ws(a!, 'ada');
    const bob = await tcp(b!, 'bob');
    const cy = await ws(c!, 'cy');
    await waitFor('bob in lobby', () => bob.lines.some((l) => /you joined #lobby/.test(l)));

    const ack1 = await say(ada, 'hi from a', 'r1');
    expect(ack1.type).toBe('ack');
    bob.send('hi from b');
    await say(cy, 'hi from c', 'r2');
    await bob.waitLine(/^\[lobby\] <ada> hi from a$/);
    await bob.waitLine(/^\[lobby\] <cy> hi from c$/);
    for (const user of [ada, cy]) {
      await waitFor('three messages', () => liveTexts(user).length >= 3);
      expect(liveTexts(user).sort()).toEqual(['hi from a', 'hi from b', 'hi from c']);
    }
    // One global order: both WebSocket users saw the same ids in the same order.
    expect(ada.messages().map((m) => m.id)).toEqual(cy.messages().map((m) => m.id));

    // who lists members of every node, whichever node is asked.
    bob.send('/who');
    await bob.waitLine(/^\* in #lobby: ada, bob, cy$/);
    ada.send({ type: 'who', room: 'lobby', ref: 'w' });
    expect((await ada.next('who', (f) => f.ref === 'w')).members).toEqual(['ada', 'bob', 'cy']);

    // A nickname held on node A is refused on node C.
    const dup = await WsTestClient.open(c!.urls.http!);
    clients.push(dup);
    dup.send({ type: 'nick', nick: 'ADA', ref: 'n' });
    expect((await dup.next('error', (f) => f.ref === 'n')).code).toBe('NICK_TAKEN');

    // Direct messages and typing cross nodes.
    ada.send({ type: 'dm', to: 'cy', text: 'psst', ref: 'd' });
    expect((await ada.next('ack', (f) => f.ref === 'd')).type).toBe('ack');
    expect((await cy.next('dm')).text).toBe('psst');
    ada.send({ type: 'typing', room: 'lobby' });
    expect((await cy.next('typing')).nick).toBe('ada');

    // A login token issued by node A is accepted by node B's HTTP API (one shared secret).
    const token = String(ada.frames.find((f) => f.type === 'nick')!.token);
    const post = await fetch(`${b!.urls.http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'via http on b' }),
    });
    expect(post.status).toBe(201);
    await cy.next('message', (f) => f.text === 'via http on b');

    // History on join from another node, and resume from an id on a third.
    const late = await ws(b!, 'late');
    const replayed = late
      .messages()
      .filter((m) => m.replay)
      .map((m) => m.text);
    expect(replayed).toEqual(ada.messages().map((m) => m.text));
    const firstId = String(ada.messages()[0]!.id);
    const resumer = await ws(c!, 'resumer', 'elsewhere');
    resumer.send({ type: 'join', room: 'lobby', after: firstId, ref: 'j' });
    const end = await resumer.next('history-end', (f) => f.room === 'lobby');
    expect(end.count).toBe(3);
    expect(resumer.messages().map((m) => m.id)).toEqual(
      ada
        .messages()
        .slice(1)
        .map((m) => m.id),
    );
  });

  it('survives kill -9 of a node: its users vanish within the TTL, the rest chat on, its clients resume elsewhere', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const ada = await ws(a!, 'ada');
    const victim = await ws(b!, 'victim');
    const tvictim = await tcp(b!, 'tvictim');
    for (let i = 0; i < 5; i++) await say(ada, `before ${i}`, `b${i}`);
    await waitFor('victim saw 5', () => liveTexts(victim).length === 5);
    const lastSeen = String(victim.messages().at(-1)!.id);

    b!.proc.kill('SIGKILL');
    const killedAt = Date.now();
    // Others keep chatting while the dead node's users are still listed.
    for (let i = 0; i < 5; i++) expect((await say(ada, `during ${i}`, `d${i}`)).type).toBe('ack');
    await eventually(
      'victims gone from who',
      async () => {
        const ref = `w${Date.now()}`;
        ada.send({ type: 'who', room: 'lobby', ref });
        const members = (await ada.next('who', (f) => f.ref === ref)).members as string[];
        return members.join(',') === 'ada';
      },
      15_000,
    );
    // Presence TTL is 6 s; heartbeats and sweeps run every 2 s; allow for a loaded machine.
    expect(Date.now() - killedAt).toBeLessThan(12_000);
    await ada.next('leave', (f) => f.nick === 'victim');
    void tvictim;

    // The dead node's client reconnects to node A with its last id: no gap, no duplicate.
    const back = await WsTestClient.open(a!.urls.http!);
    clients.push(back);
    await eventually('nickname free again', async () => {
      const ref = `n${Date.now()}`;
      back.send({ type: 'nick', nick: 'victim', ref });
      const reply = await waitFor('nick reply', () => back.frames.find((f) => f.ref === ref));
      return reply.type === 'nick';
    });
    back.send({ type: 'join', room: 'lobby', after: lastSeen, ref: 'j' });
    await back.next('history-end');
    expect(back.messages().map((m) => m.text)).toEqual([
      'during 0',
      'during 1',
      'during 2',
      'during 3',
      'during 4',
    ]);
    await say(ada, 'welcome back', 'wb');
    await back.next('message', (f) => f.text === 'welcome back');
    const all = [...victim.messages(), ...back.messages()].map((m) => m.id);
    expect(new Set(all).size).toBe(all.length);
  });

  it('shuts a node down gracefully on SIGTERM: exit 0, its users leave at once, their nicknames are free', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const ada = await ws(a!, 'ada');
    await ws(b!, 'bob');
    await ada.next('join', (f) => f.nick === 'bob');
    const t0 = Date.now();
    expect(await b!.stop('SIGTERM')).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    await ada.next('leave', (f) => f.nick === 'bob', 0, 5000);
    ada.send({ type: 'who', room: 'lobby', ref: 'w' });
    expect((await ada.next('who', (f) => f.ref === 'w')).members).toEqual(['ada']);
    const again = await ws(a!, 'bob');
    expect(again.frames.some((f) => f.type === 'nick' && f.nick === 'bob')).toBe(true);
  });

  it('loses and duplicates nothing when Redis is killed during a steady flow', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const senders = [await ws(a!, 'ada', 'flow'), await ws(b!, 'bob', 'flow')];
    const r1 = await ws(a!, 'r1', 'flow');
    const r2 = await ws(b!, 'r2', 'flow');
    const acked: string[] = [];
    const errors: Frame[] = [];
    let slowestAckMs = 0;
    let stop = false;
    const flow = async (c: WsTestClient, name: string) => {
      for (let i = 0; !stop && i < 2000; i++) {
        // The client's retry policy: STORE_FAILED means "not stored, retry" -> send again.
        for (let attempt = 0; attempt < 20; attempt++) {
          const t0 = Date.now();
          const reply = await say(c, `${name} ${i}`, `${name}-${i}-${attempt}`, 'flow');
          slowestAckMs = Math.max(slowestAckMs, Date.now() - t0);
          if (reply.type === 'ack') {
            acked.push(String(reply.id));
            break;
          }
          errors.push(reply);
          await new Promise((r) => setTimeout(r, 250));
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const flows = senders.map((c, i) => flow(c, i === 0 ? 'ada' : 'bob'));
    await waitFor('flow going', () => acked.length >= 40, 20_000);
    await redis.stop('SIGKILL');
    const killedAt = acked.length;
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    await waitFor('flow after restart', () => acked.length >= killedAt + 60, 30_000);
    stop = true;
    await Promise.all(flows);

    // Every acknowledged message is in the stream exactly once (read straight from Redis).
    const direct = createClient({ url: redis.url, RESP: 2 });
    direct.on('error', () => {});
    await direct.connect();
    const raw = (await direct.sendCommand(['XRANGE', 'chat:{flow}:log', '-', '+'])) as [string, string[]][];
    await direct.close();
    const streamIds = raw.map(([id]) => id);
    const streamTexts = raw.map(([, f]) => f[f.indexOf('t') + 1]);
    expect(new Set(streamIds).size).toBe(streamIds.length);
    expect(new Set(acked).size).toBe(acked.length);
    for (const id of acked) expect(streamIds).toContain(id);
    // No message stored twice (texts are unique per send).
    expect(new Set(streamTexts).size).toBe(streamTexts.length);
    // Every connected member received every stored message exactly once, in stream order.
    for (const c of [...senders, r1, r2]) {
      await waitFor('member caught up', () => c.messages().length >= streamIds.length, 20_000);
      expect(c.messages().map((m) => m.id)).toEqual(streamIds);
    }
    expect(acked.length).toBeGreaterThan(killedAt);
    // A short outage is absorbed by the bounded wait: sends in flight waited for Redis (the
    // outage really happened under them) and no client had to retry.
    expect(slowestAckMs).toBeGreaterThanOrEqual(1000);
    expect(errors.map((e) => e.code)).toEqual([]);
    expect(a!.stderr() + b!.stderr()).toMatch(/redis/i);
  }, 90_000);

  it('fails sends with a retryable STORE_FAILED during a long Redis outage, never acks what is not stored', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const ada = await ws(a!, 'ada', 'long');
    const bob = await ws(b!, 'bob', 'long');
    const watcher = await ws(b!, 'watcher', 'long');
    const acked: string[] = [];
    const failedTexts = new Set<string>();
    const failures: Frame[] = [];
    let stop = false;
    const flow = async (c: WsTestClient, name: string) => {
      for (let i = 0; !stop && i < 2000; i++) {
        const text = `${name} ${i}`;
        for (let attempt = 0; attempt < 100; attempt++) {
          const reply = await say(c, text, `${name}-${i}-${attempt}`, 'long');
          if (reply.type === 'ack') {
            acked.push(String(reply.id));
            break;
          }
          failures.push(reply);
          failedTexts.add(text);
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const flows = [flow(ada, 'ada'), flow(bob, 'bob')];
    await waitFor('flow going', () => acked.length >= 20, 20_000);
    await redis.stop('SIGKILL');
    const before = acked.length;
    // Longer than two of the nodes' 5 s bounded waits: a send in flight at the kill ends
    // OUTCOME_UNKNOWN after the first, and the resend that follows it, never sent while Redis is
    // down, must end STORE_FAILED after the second.
    await new Promise((r) => setTimeout(r, 11_500));
    expect(acked.length).toBeLessThanOrEqual(before + 2); // at most what was in flight at the kill
    await redis.start();
    await waitFor('flow after restart', () => acked.length >= before + 30, 30_000);
    stop = true;
    await Promise.all(flows);

    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      // OUTCOME_UNKNOWN: a send in flight when Redis died (it may have been stored); both retry.
      expect(['STORE_FAILED', 'OUTCOME_UNKNOWN']).toContain(f.code);
      expect(String(f.message)).toMatch(/retry|resend/);
    }
    expect(failures.filter((f) => f.code === 'STORE_FAILED').length).toBeGreaterThan(0);
    const stored = (await (await fetch(`${a!.urls.http}/api/rooms/long/messages?limit=1000`)).json()) as {
      messages: { id: string; text: string }[];
    };
    const ids = stored.messages.map((m) => m.id);
    for (const id of acked) expect(ids).toContain(id);
    expect(new Set(ids).size).toBe(ids.length);
    // A text stored twice can only be one whose send failed and was resent (see README).
    const seen = new Set<string>();
    for (const m of stored.messages) {
      if (seen.has(m.text)) expect(failedTexts.has(m.text)).toBe(true);
      seen.add(m.text);
    }
    for (const c of [ada, bob, watcher]) {
      await waitFor('member caught up', () => c.messages().at(-1)?.id === ids.at(-1), 20_000);
      expect(c.messages().map((m) => m.id)).toEqual(ids);
    }
  }, 90_000);
});
