import { afterAll, beforeAll, expect, it } from 'vitest';
import { TcpTestClient, WsTestClient } from './helpers/clients.js';
import { describeWithRedis, type RedisInstance, startRedis } from './helpers/redis.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Private rooms on two real chat nodes sharing one redis-server: the ACL written on one node is
 * enforced on the other, a kick on one node removes the member's connection on the other, and the
 * ACL outlives a restart of a node.
 */
describeWithRedis('private rooms across two nodes (Redis)', () => {
  let redis: RedisInstance;
  const running: RunningServer[] = [];
  const clients: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(running.map((s) => s.stop('SIGKILL')));
    await redis?.destroy();
  });

  async function node(): Promise<RunningServer> {
    const s = await startServer({ args: ['--redis', redis.url, '--guests', 'on'] });
    running.push(s);
    return s;
  }

  async function tcpAccount(s: RunningServer, name: string, how: 'register' | 'login') {
    const c = await TcpTestClient.open(s.port('tcp'));
    clients.push(c);
    c.send(`/${how} ${name} password-1`);
    await c.waitLine(new RegExp(`logged in as ${name}`));
    return c;
  }

  async function wsAccount(s: RunningServer, name: string, how: 'register' | 'login') {
    const c = await WsTestClient.open(s.urls.http!);
    clients.push(c);
    c.send({ type: how, name, password: 'password-1' });
    const account = await c.next('account', (f) => f.account === name);
    return { c, token: account.token as string };
  }

  it('enforces the ACL of one node on the other, and a kick reaches the member on the other node', async () => {
    const a = await node();
    const b = await node();
    const alice = await tcpAccount(a, 'alice', 'register');
    const { c: bob, token: bobToken } = await wsAccount(b, 'bob', 'register');
    const carol = await tcpAccount(b, 'carol', 'register');

    alice.send('/create secret private');
    await alice.waitLine(/^\* you joined private room #secret/);
    alice.send('/cid c1 written on node a');
    await alice.waitLine(/^\* ack c1 /);

    carol.send('/join secret');
    await carol.waitLine(/^! NOT_INVITED: /);
    carol.send('/create secret private');
    await carol.waitLine(/^! ROOM_EXISTS: /);
    const anon = await fetch(`${b.urls.http}/api/rooms/secret/messages`);
    expect(anon.status).toBe(401);
    expect(
      (
        await fetch(`${b.urls.http}/api/rooms/secret/messages`, {
          headers: { authorization: `Bearer ${bobToken}` },
        })
      ).status,
    ).toBe(403);

    // The room list (SMISMEMBER on the private-room set) hides it from everyone but members.
    const rooms = async (token?: string) => {
      const res = await fetch(`${b.urls.http}/api/rooms`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return ((await res.json()) as { rooms: { room: string }[] }).rooms.map((r) => r.room);
    };
    expect(await rooms()).not.toContain('secret');
    expect(await rooms(bobToken)).not.toContain('secret');
    alice.send('/token');
    const aliceToken = /^\* token for alice: (\S+)$/.exec(await alice.waitLine(/^\* token for alice: /))![1]!;
    expect(await rooms(aliceToken)).toContain('secret');
    alice.send('/invite bob');
    await alice.waitLine(/^\* invited bob to #secret$/);
    bob.send({ type: 'join', room: 'secret' });
    await bob.next('history-end', (f) => f.room === 'secret');
    expect(bob.messages().map((m) => m.text)).toContain('written on node a');
    expect(
      (
        await fetch(`${b.urls.http}/api/rooms/secret/messages`, {
          headers: { authorization: `Bearer ${bobToken}` },
        })
      ).status,
    ).toBe(200);
    bob.send({ type: 'send', room: 'secret', text: 'from node b' });
    await alice.waitLine(/^\[secret\] <bob> from node b$/);

    alice.send('/kick bob');
    await alice.waitLine(/^\* removed bob from #secret$/);
    expect(await bob.next('left', (f) => f.room === 'secret')).toMatchObject({ by: 'alice' });
    bob.send({ type: 'join', room: 'secret', ref: 'again' });
    expect(await bob.next('error', (f) => f.ref === 'again')).toMatchObject({ code: 'NOT_INVITED' });
  });

  it('keeps the ACL when a node restarts', async () => {
    const b = running[1]!;
    expect(await b.stop('SIGTERM')).toBe(0);
    const b2 = await node();
    const carol = await tcpAccount(b2, 'carol', 'login');
    carol.send('/join secret');
    await carol.waitLine(/^! NOT_INVITED: /);
    const alice = await tcpAccount(b2, 'alice', 'login');
    alice.send('/join secret');
    await alice.waitLine(/^\[secret\] <bob> from node b$/);
    alice.send('/who');
    await alice.waitLine(/^\* in #secret: /);
  });
});
