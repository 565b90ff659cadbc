import { afterAll, describe, expect, it } from 'vitest';
import { TcpTestClient, WsTestClient } from './helpers/clients.js';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';

/**
 * Private rooms through the real server process: TCP lines, WebSocket JSON and the HTTP API on
 * the file store, and the ACL after a restart on the same data directory.
 */
describe('private rooms over every transport (file store)', () => {
  const dataDir = tempDir('chat-private-e2e-');
  let server: RunningServer;
  const clients: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await server?.stop('SIGKILL');
  });

  async function tcpAccount(name: string, how: 'register' | 'login' = 'register') {
    const c = await TcpTestClient.open(server.port('tcp'));
    clients.push(c);
    c.send(`/${how} ${name} password-1`);
    await c.waitLine(new RegExp(`logged in as ${name}`));
    return c;
  }

  async function wsAccount(name: string, how: 'register' | 'login' = 'register') {
    const c = await WsTestClient.open(server.urls.http!);
    clients.push(c);
    c.send({ type: how, name, password: 'password-1' });
    const account = await c.next('account', (f) => f.account === name);
    return { c, token: account.token as string };
  }

  async function get(path: string, token?: string) {
    const res = await fetch(`${server.urls.http}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('keeps history, member list and posting to members on TCP, WebSocket and HTTP', async () => {
    server = await startServer({ dataDir, args: ['--guests', 'on'] });
    const alice = await tcpAccount('alice');
    const { c: bob, token: bobToken } = await wsAccount('bob');
    const { token: carolToken } = await wsAccount('carol');
    const guest = await TcpTestClient.open(server.port('tcp'));
    clients.push(guest);

    guest.send('/create hideout private');
    await guest.waitLine(/^! LOGIN_REQUIRED: /);
    alice.send('/create secret private');
    await alice.waitLine(/^\* you joined private room #secret \(1 here: alice\)$/);
    alice.send('hush, members only');
    alice.send('/cid c1 second secret');
    await alice.waitLine(/^\* ack c1 /);

    // Strangers: refused on every path, with a code.
    guest.send('/join secret');
    await guest.waitLine(/^! NOT_INVITED: #secret is a private room/);
    guest.send('/who secret');
    await guest.waitLine(/^! NOT_INVITED: /);
    bob.send({ type: 'join', room: 'secret', ref: 'j1' });
    expect(await bob.next('error', (f) => f.ref === 'j1')).toMatchObject({ code: 'NOT_INVITED' });
    bob.send({ type: 'who', room: 'secret', ref: 'w1' });
    expect(await bob.next('error', (f) => f.ref === 'w1')).toMatchObject({ code: 'NOT_INVITED' });
    bob.send({ type: 'invite', room: 'secret', name: 'bob', ref: 'i0' });
    expect(await bob.next('error', (f) => f.ref === 'i0')).toMatchObject({ code: 'NOT_OWNER' });
    const anon = await get('/api/rooms/secret/messages');
    expect(anon.status).toBe(401);
    expect(anon.body.error).toMatchObject({ code: 'NOT_INVITED' });
    const stranger = await get('/api/rooms/secret/messages', carolToken);
    expect(stranger.status).toBe(403);
    expect(stranger.body.error).toMatchObject({ code: 'NOT_INVITED' });
    const post = await fetch(`${server.urls.http}/api/rooms/secret/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carolToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'let me in' }),
    });
    expect(post.status).toBe(403);
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe('NOT_INVITED');
    const list = await get('/api/rooms');
    expect((list.body.rooms as { room: string }[]).map((r) => r.room)).not.toContain('secret');
    // Public rooms stay open to anonymous readers.
    expect((await get('/api/rooms/lobby/messages')).status).toBe(200);

    // Invited: bob reads the history over WebSocket and HTTP, lists members, posts.
    alice.send('/invite bob');
    await alice.waitLine(/^\* invited bob to #secret$/);
    await bob.next('dm', (f) => f.from === 'alice' && String(f.text).includes('#secret'));
    const from = bob.frames.length;
    bob.send({ type: 'join', room: 'secret', ref: 'j2' });
    expect(await bob.next('joined', (f) => f.ref === 'j2', from)).toMatchObject({ private: true });
    await bob.next('history-end', (f) => f.room === 'secret', from);
    expect(
      bob.frames
        .slice(from)
        .filter((f) => f.type === 'message')
        .map((f) => f.text),
    ).toEqual(['hush, members only', 'second secret']);
    const history = await get('/api/rooms/secret/messages', bobToken);
    expect(history.status).toBe(200);
    expect((history.body.messages as { text: string }[]).map((m) => m.text)).toEqual([
      'hush, members only',
      'second secret',
    ]);
    const listed = await get('/api/rooms', bobToken);
    expect((listed.body.rooms as { room: string }[]).map((r) => r.room)).toContain('secret');
    bob.send({ type: 'who', room: 'secret', ref: 'w2' });
    expect(await bob.next('who', (f) => f.ref === 'w2')).toMatchObject({ members: ['alice', 'bob'] });
    bob.send({ type: 'send', room: 'secret', text: 'thanks alice' });
    await alice.waitLine(/^\[secret\] <bob> thanks alice$/);
    const bobPost = await fetch(`${server.urls.http}/api/rooms/secret/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'over http' }),
    });
    expect(bobPost.status).toBe(201);
    await alice.waitLine(/^\[secret\] <bob> over http$/);

    // Kicked: bob's connection leaves at once and every path is closed again.
    alice.send('/kick bob');
    await alice.waitLine(/^\* removed bob from #secret$/);
    expect(await bob.next('left', (f) => f.room === 'secret')).toMatchObject({ by: 'alice' });
    alice.send('/cid c2 after the kick');
    await alice.waitLine(/^\* ack c2 /);
    expect((await get('/api/rooms/secret/messages', bobToken)).status).toBe(403);
    bob.send({ type: 'send', room: 'secret', text: 'still here?', ref: 's3' });
    expect(await bob.next('error', (f) => f.ref === 's3')).toMatchObject({ code: 'NOT_IN_ROOM' });
    expect(bob.messages().map((f) => f.text)).not.toContain('after the kick');
  });

  it('keeps the ACL across a restart on the same data directory', async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    expect(await server.stop('SIGTERM')).toBe(0);
    server = await startServer({ dataDir, args: ['--guests', 'on'] });
    const bob = await tcpAccount('bob', 'login');
    bob.send('/join secret');
    await bob.waitLine(/^! NOT_INVITED: /);
    const alice = await tcpAccount('alice', 'login');
    alice.send('/join secret');
    await alice.waitLine(/^\[secret\] <alice> hush, members only$/);
    alice.send('/invite carol');
    await alice.waitLine(/^\* invited carol to #secret$/);
    const { c: carol, token } = await wsAccount('carol', 'login');
    carol.send({ type: 'join', room: 'secret' });
    await carol.next('history-end', (f) => f.room === 'secret');
    expect((await get('/api/rooms/secret/messages', token)).status).toBe(200);
    expect((await get('/api/rooms/secret/messages')).status).toBe(401);
  });
});
