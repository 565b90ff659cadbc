import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { type Frame, TcpTestClient, WsTestClient } from './helpers/clients.js';
import { rawTcp, redisAdmin, waitFor, wsTextFrame, wsUpgrade } from './helpers/raw.js';
import { eventually, type RedisInstance, startRedis } from './helpers/redis.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Fault paths of the Redis mode against a real redis-server and real node processes (issue 21):
 * OOM during a join, a stall while a client floods frames before `welcome`, a send whose outcome
 * is unknown, a crashed node's presence, the room list under many rooms, raw error text.
 */

type Admin = Awaited<ReturnType<typeof redisAdmin>>;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describeWithPeers(['redis-server'], 'Redis mode fault paths (real redis-server, real nodes)', () => {
  let redis: RedisInstance;
  let admin: Admin;
  const running: RunningServer[] = [];
  const clients: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    redis = await startRedis({ extraArgs: ['--enable-debug-command', 'local'] });
    admin = await redisAdmin(redis.url);
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await Promise.allSettled(running.splice(0).map((s) => s.stop('SIGKILL')));
    await admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    await admin.cmd('FLUSHALL');
  });
  afterAll(async () => {
    await admin?.close();
    await redis?.destroy();
  });

  async function node(extra: string[] = []): Promise<RunningServer> {
    const s = await startServer({
      args: ['--redis', redis.url, '--rate', '200', '--burst', '200', ...extra],
    });
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
  function reply(c: WsTestClient, ref: string, timeoutMs = 20_000): Promise<Frame> {
    return waitFor(`reply to ${ref}`, () => c.frames.find((f) => f.ref === ref), timeoutMs);
  }
  /** DEBUG SLEEP on its own connection; resolves once Redis is asleep, with the wake-up. */
  async function stall(ms: number): Promise<{ woken: Promise<void> }> {
    const sleeper = await redisAdmin(redis.url);
    const woken = sleeper
      .cmd('DEBUG', 'SLEEP', String(ms / 1000))
      .then(() => {})
      .finally(() => void sleeper.close().catch(() => {}));
    await sleep(50);
    return { woken };
  }

  it('undoes a join that failed under OOM: no half-membership, a generic error, the detail in the log', async () => {
    const s = await node();
    const ada = await ws(s, 'ada');
    const bob = await ws(s, 'bob');
    await admin.cmd('CONFIG', 'SET', 'maxmemory', '1');
    bob.send({ type: 'join', room: 'oom', ref: 'j1' });
    const failed = await reply(bob, 'j1');
    expect(failed).toMatchObject({ type: 'error', code: 'STORE_FAILED' });
    // Raw Redis error text (OOM …, script: <sha>) stays in the node's log.
    expect(String(failed.message)).not.toMatch(/OOM|script|maxmemory|redis/i);
    bob.send({ type: 'send', room: 'lobby', text: 'during oom', ref: 's0' });
    const sendFailed = await reply(bob, 's0');
    expect(sendFailed).toMatchObject({ type: 'error', code: 'STORE_FAILED' });
    expect(String(sendFailed.message)).not.toMatch(/OOM|script|maxmemory/i);
    await waitFor('detail logged', () => /store error during (join|append): OOM/.test(s.stderr()));
    await admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    // Not a member: sends are refused, who does not list bob, the heartbeat does not re-add him.
    bob.send({ type: 'send', room: 'oom', text: 'x', ref: 's1' });
    expect(await reply(bob, 's1')).toMatchObject({ type: 'error', code: 'NOT_IN_ROOM' });
    await sleep(2500);
    ada.send({ type: 'join', room: 'oom', ref: 'j2' });
    expect(await reply(ada, 'j2')).toMatchObject({ type: 'joined', members: ['ada'], count: 1 });
    // Joining again works, and live messages from others arrive.
    bob.send({ type: 'join', room: 'oom', ref: 'j3' });
    expect(await reply(bob, 'j3')).toMatchObject({ type: 'joined', count: 2 });
    await bob.next('history-end');
    ada.send({ type: 'send', room: 'oom', text: 'after oom', ref: 's2' });
    await waitFor('live message', () => bob.messages().some((m) => m.text === 'after oom' && !m.replay));
  }, 60_000);

  it('closes a WebSocket flooding frames before welcome (1008) while Redis stalls; memory stays bounded', async () => {
    const s = await node();
    const port = s.port('http');
    const pid = s.proc.pid!;
    const before = rssBytes(pid);
    const stalled = await stall(6000);
    let wokeAt = Number.POSITIVE_INFINITY;
    void stalled.woken
      .then(() => {
        wokeAt = Date.now();
      })
      .catch(() => {});
    const c = await rawTcp(port, wsUpgrade(port));
    // A close frame (0x88, length, code 1008 = 0x03f0, reason), noted when it first arrives.
    let closedAt: number | undefined;
    const closed1008 = () => {
      const b = c.bytes();
      for (let i = b.indexOf(0x88); i !== -1; i = b.indexOf(0x88, i + 1)) {
        if (b[i + 2] === 0x03 && b[i + 3] === 0xf0) return true;
      }
      return false;
    };
    c.socket.on('data', () => {
      if (closedAt === undefined && closed1008()) closedAt = Date.now();
    });
    const frame = wsTextFrame(JSON.stringify({ type: 'ping', pad: 'x'.repeat(16 * 1024 - 40) }));
    let sent = 0;
    // 4,000 frames of 16 KiB (64 MiB) while the session cannot start; stop early once closed.
    while (sent < 4000 && closedAt === undefined && !c.socket.destroyed && c.socket.writable) {
      if (!c.socket.write(frame)) await new Promise((r) => c.socket.once('drain', r).once('close', r));
      sent++;
    }
    await waitFor('close 1008', () => closedAt, 5000);
    // Closed while Redis still slept: the frames waiting for `welcome` were counted.
    expect(closedAt!).toBeLessThan(wokeAt);
    expect(sent).toBeLessThan(4000);
    const peak = rssBytes(pid);
    c.socket.destroy();
    await stalled.woken;
    expect(peak - before).toBeLessThan(48 * 1024 * 1024);
    // The node is fine afterwards.
    const ok = await ws(s, 'after');
    expect(ok.frames[0]!.type).toBe('welcome');
  }, 60_000);

  it('answers OUTCOME_UNKNOWN (not STORE_FAILED) when Redis does not confirm in time; a resend with the cid dedupes, also on TCP', async () => {
    const s = await node();
    const ada = await ws(s, 'ada');
    const bob = await tcp(s, 'bob');
    // Longer than the 5 s bounded wait plus generous room for a slow machine to send both.
    const stalled = await stall(10_000);
    ada.send({ type: 'send', room: 'lobby', text: 'slow one', cid: 'c-1', ref: 's1' });
    bob.send('/cid k-1 slow line');
    const first = await reply(ada, 's1', 20_000);
    expect(first).toMatchObject({ type: 'error', code: 'OUTCOME_UNKNOWN', cid: 'c-1' });
    await bob.waitLine(/^! OUTCOME_UNKNOWN: .*\(cid k-1\)$/, 20_000);
    await stalled.woken;
    // Both writes did land once Redis woke up: the resends return the first ids.
    const live = await waitFor('both stored', () => {
      const texts = ada.messages().filter((m) => !m.replay);
      return texts.length >= 2 ? texts : undefined;
    });
    ada.send({ type: 'send', room: 'lobby', text: 'slow one', cid: 'c-1', ref: 's2' });
    const again = await reply(ada, 's2');
    expect(again).toMatchObject({ type: 'ack', cid: 'c-1', id: live.find((m) => m.text === 'slow one')!.id });
    bob.send('/cid k-1 slow line');
    const ack = await bob.waitLine(/^\* ack k-1 /);
    expect(ack).toBe(`* ack k-1 ${live.find((m) => m.text === 'slow line')!.id}`);
    const history = (await (await fetch(`${s.urls.http}/api/rooms/lobby/messages?limit=50`)).json()) as {
      messages: { text: string }[];
    };
    expect(history.messages.filter((m) => m.text === 'slow one' || m.text === 'slow line')).toHaveLength(2);
  }, 60_000);

  it("removes a crashed node's presence in rooms no surviving node follows", async () => {
    const a = await node();
    const b = await node();
    const ada = await tcp(a, 'ada');
    ada.send('/join lonely');
    await ada.waitLine(/you joined #lonely/);
    expect(await admin.cmd('EXISTS', 'chat:{lonely}:members')).toBe(1);
    await a.stop('SIGKILL');
    // The TTL is 6 s; the key lives at most twice that after the last refresh.
    await eventually(
      'members key gone',
      async () => (await admin.cmd('EXISTS', 'chat:{lonely}:members')) === 0,
      20_000,
    );
    const rooms = (await (await fetch(`${b.urls.http}/api/rooms`)).json()) as { rooms: { room: string }[] };
    expect(rooms.rooms.map((r) => r.room)).not.toContain('lonely');
    expect(((await admin.cmd('KEYS', '*lonely*')) as string[]).filter((k) => !k.endsWith(':log'))).toEqual(
      [],
    );
  }, 60_000);

  it('bounds rooms: joins are rate limited, the room list is bounded, /healthz stays fast with 50,000 rooms', async () => {
    const s = await node();
    // Rooms left behind by older versions (an unbounded set) must not cost anything now.
    for (let i = 0; i < 50_000; i += 5000) {
      await admin.cmd('SADD', 'chat:rooms', ...Array.from({ length: 5000 }, (_, j) => `old${i + j}`));
    }
    const c = await tcp(s, 'churn');
    for (let i = 0; i < 200; i++) {
      c.send(`/join r${i}`);
      c.send('/leave');
    }
    await c.waitLine(/^! RATE_LIMITED: slow down: too many joins/);
    c.send('/who lobby');
    await c.waitLine(/^\* in #lobby:/, 20_000);
    const joined = c.lines.filter((l) => /^\* you joined #r\d+/.test(l)).length;
    expect(joined).toBeLessThanOrEqual(25);
    expect(joined).toBeGreaterThan(5);
    const t0 = Date.now();
    const [health, ...lists] = await Promise.all([
      fetch(`${s.urls.http}/healthz`),
      ...Array.from({ length: 4 }, () => fetch(`${s.urls.http}/api/rooms`)),
    ]);
    expect(health!.status).toBe(200);
    const bodies = await Promise.all(lists.map((r) => r.text()));
    const elapsed = Date.now() - t0;
    for (const b of bodies) expect(b.length).toBeLessThan(20_000);
    expect(elapsed).toBeLessThan(3000);
    expect((JSON.parse(bodies[0]!) as { rooms: { room: string }[] }).rooms.map((r) => r.room)).toEqual([
      'lobby',
    ]);
    // The live index holds only rooms with members (expired entries are pruned).
    await eventually(
      'live index small',
      async () => Number(await admin.cmd('ZCARD', 'chat:live')) <= 1,
      20_000,
    );
  }, 60_000);

  it('refuses to create rooms beyond the live-room limit across connections, and idle streams expire', async () => {
    const { ChatCore } = await import('../src/chat/index.js');
    const { RedisStore } = await import('../src/store/redis-store.js');
    const store = new RedisStore({
      url: redis.url,
      keyPrefix: 'cap:',
      maxLiveRooms: 5,
      maxRoomsCreatedPerMinute: 1000,
      roomRetentionMs: 1500,
    });
    await store.open();
    try {
      const core = new ChatCore(store);
      const sessions = await Promise.all(Array.from({ length: 3 }, () => core.connect('test', () => {})));
      const results: string[] = [];
      for (let i = 0; i < 9; i++) {
        results.push(
          await sessions[i % 3]!.join(`cap${i}`).then(
            (r) => r,
            (e: { code: string }) => e.code,
          ),
        );
      }
      expect(results.slice(0, 5)).toEqual(['cap0', 'cap1', 'cap2', 'cap3', 'cap4']);
      expect(results.slice(5)).toEqual(['ROOM_LIMIT', 'ROOM_LIMIT', 'ROOM_LIMIT', 'ROOM_LIMIT']);
      // An existing room can still be joined; the refused ones left nothing behind.
      expect(await sessions[1]!.join('cap0')).toBe('cap0');
      expect(sessions[2]!.rooms).not.toContain('cap8');
      expect(await admin.cmd('EXISTS', 'cap:{cap8}:members')).toBe(0);
      await sessions[0]!.say('cap0', 'kept a while');
      const ttl = Number(await admin.cmd('PTTL', 'cap:{cap0}:log'));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1500);
      await eventually(
        'idle stream expired',
        async () => (await admin.cmd('EXISTS', 'cap:{cap0}:log')) === 0,
        5000,
      );
      await core.shutdown();
    } finally {
      await store.close();
    }
  }, 60_000);
});

describeWithPeers(['redis-server'], 'test Redis durability check', () => {
  it('refuses a Redis that does not fsync every write (CONFIG GET appendfsync)', async () => {
    await expect(startRedis({ extraArgs: ['--appendfsync', 'everysec'] })).rejects.toThrow(
      /appendfsync always/,
    );
  }, 60_000);
});
