import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { TcpTestClient, waitFor, WsTestClient } from './helpers/clients.js';
import { describeWithRedis, type RedisInstance, redisAvailable, startRedis } from './helpers/redis.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { describe } from 'vitest';

/**
 * Identity through real server processes, over TCP (netcat's protocol), WebSocket and HTTP: the
 * hijack sequence of issue 17 on the file store (one node) and on Redis (two nodes).
 */
const ADMIN = 'operator-token-0123456789';
const running: RunningServer[] = [];
const clients: { close(): Promise<void> }[] = [];
let redis: RedisInstance | undefined;

async function node(args: string[] = []): Promise<RunningServer> {
  const s = await startServer({
    args: ['--guests', 'on', '--admin-token', ADMIN, '--rate', '50', '--burst', '50', ...args],
  });
  running.push(s);
  return s;
}

async function tcp(s: RunningServer): Promise<TcpTestClient> {
  const c = await TcpTestClient.open(s.port('tcp'));
  clients.push(c);
  return c;
}

async function ws(s: RunningServer): Promise<WsTestClient> {
  const c = await WsTestClient.open(s.urls.http!);
  clients.push(c);
  return c;
}

/** Send a line and wait for a line matching `re` that arrived after it. */
async function ask(c: TcpTestClient, line: string, re: RegExp): Promise<string> {
  const from = c.lines.length;
  c.send(line);
  return waitFor(`${line} → ${re}`, () => c.lines.slice(from).find((l) => re.test(l))).catch((err: Error) => {
    throw new Error(`${err.message}; got:\n${c.lines.slice(from).join('\n')}`);
  });
}

function post(s: RunningServer, token: string | undefined, text: string, room = 'lobby') {
  return fetch(`${s.urls.http}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ text }),
  });
}

async function code(res: Response): Promise<string | undefined> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
  return body.error?.code;
}

/** The hijack sequence: `a` and `b` may be the same node (file store) or two nodes (Redis). */
async function hijackSequence(a: RunningServer, b: RunningServer): Promise<void> {
  // alice registers over TCP on node a and gets a token; she is also logged in over WebSocket on b.
  const alice = await tcp(a);
  await ask(alice, '/register alice password-1', /^\* logged in as alice$/);
  const tcpToken = (await ask(alice, '/token', /^\* token for alice: /)).split(': ')[1]!;
  const aliceWs = await ws(b);
  aliceWs.send({ type: 'login', name: 'alice', password: 'password-1', ref: 'l' });
  const login = await aliceWs.next('account', (f) => f.ref === 'l');
  expect(login).toMatchObject({ account: 'alice', nick: 'alice' });
  const wsToken = String(login.token);

  // bob cannot become alice: renaming gives a guest name, registering and guessing fail.
  const bob = await tcp(b);
  await ask(bob, '/nick alice', /^\* you are now guest-alice$/);
  await ask(bob, '/register alice password-2', /^! ACCOUNT_EXISTS: /);
  await ask(bob, '/login alice password-2', /^! LOGIN_FAILED: wrong name or password$/);

  // carol's DM reaches both of alice's sessions and not bob.
  const carol = await ws(b);
  carol.send({ type: 'dm', to: 'alice', text: 'my password is hunter2', ref: 'd1' });
  await carol.next('ack', (f) => f.ref === 'd1');
  await alice.waitLine(/^\[dm\] <guest-\d+> my password is hunter2$/);
  await aliceWs.next('dm', (f) => f.text === 'my password is hunter2');

  // alice logs out over TCP: that token dies on every node, her WebSocket session lives on.
  await ask(alice, '/logout', /^\* logged out: you are guest-\d+ \(a guest\)$/);
  for (const s of [a, b]) {
    const res = await post(s, tcpToken, 'old token');
    expect(res.status).toBe(401);
    expect(await code(res)).toBe('SESSION_ENDED');
  }
  expect((await post(a, wsToken, 'still alice')).status).toBe(201);
  // bob still cannot take the name, and carol's next DM goes only to alice's live session.
  await ask(bob, '/register alice password-3', /^! ACCOUNT_EXISTS: /);
  carol.send({ type: 'dm', to: 'alice', text: 'second', ref: 'd2' });
  await carol.next('ack', (f) => f.ref === 'd2');
  await aliceWs.next('dm', (f) => f.text === 'second');
  // An operator ends alice's last session: the WebSocket becomes a guest at once, its token dies.
  const revoke = await fetch(`${a.urls.http}/api/admin/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ account: 'alice' }),
  });
  expect(await revoke.json()).toEqual({ account: 'alice', ended: 1 });
  await aliceWs.next('account', (f) => f.account === null);
  const dead = await post(b, wsToken, 'after revoke');
  expect(dead.status).toBe(401);
  // Nobody is alice now: a DM fails instead of reaching whoever holds a similar name.
  carol.send({ type: 'dm', to: 'alice', text: 'third', ref: 'd3' });
  expect(await carol.next('error', (f) => f.ref === 'd3')).toMatchObject({ code: 'NO_SUCH_NICK' });
  await new Promise((r) => setTimeout(r, 200));
  expect(bob.lines.filter((l) => l.startsWith('[dm]'))).toEqual([]);
  // The former holder logs in elsewhere: her mail reaches her there.
  const again = await tcp(b);
  await ask(again, '/login alice password-1', /^\* logged in as alice$/);
  carol.send({ type: 'dm', to: 'alice', text: 'welcome back', ref: 'd4' });
  await again.waitLine(/^\[dm\] <guest-\d+> welcome back$/);
  expect(bob.lines.filter((l) => l.startsWith('[dm]'))).toEqual([]);
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(running.splice(0).map((s) => s.stop('SIGKILL')));
});
afterAll(async () => {
  await redis?.destroy();
});

describe('accounts through the server process (file store)', () => {
  it('the hijack sequence fails at every step', async () => {
    const s = await node();
    await hijackSequence(s, s);
  });

  it('HTTP: login, post, logout; anonymous writes refused, public reads open', async () => {
    const s = await node();
    const reg = await fetch(`${s.urls.http}/api/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hana', password: 'password-1' }),
    });
    expect(reg.status).toBe(201);
    const login = await fetch(`${s.urls.http}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hana', password: 'password-1' }),
    });
    const { token, account } = (await login.json()) as { token: string; account: string };
    expect(account).toBe('hana');
    const ok = await post(s, token, 'over http');
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ nick: 'hana', text: 'over http' });
    expect((await post(s, undefined, 'anonymous')).status).toBe(401);
    const history = await fetch(`${s.urls.http}/api/rooms/lobby/messages`);
    expect(history.status).toBe(200);
    const out = await fetch(`${s.urls.http}/api/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(out.status).toBe(204);
    const after = await post(s, token, 'after logout');
    expect(after.status).toBe(401);
    expect(await code(after)).toBe('SESSION_ENDED');
    const wrong = await fetch(`${s.urls.http}/api/admin/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-the-operator-token' },
      body: JSON.stringify({ account: 'hana' }),
    });
    expect(wrong.status).toBe(403);
  });

  it('login attempts over TCP are rate-limited per account (5, then one per 30 s)', async () => {
    const s = await node();
    const reg = await fetch(`${s.urls.http}/api/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'kim', password: 'password-1' }),
    });
    expect(reg.status).toBe(201);
    const guesser = await tcp(s);
    for (let i = 0; i < 5; i++) await ask(guesser, `/login kim guess-${i}xx`, /^! LOGIN_FAILED: /);
    await ask(
      guesser,
      '/login kim guess-6xx',
      /^! RATE_LIMITED: slow down: too many login attempts for this account/,
    );
    // From another connection too, and even with the right password: the account is cooling down.
    const owner = await tcp(s);
    await ask(owner, '/login kim password-1', /^! RATE_LIMITED: /);
  });

  it('--guests off and --public-reads off: nothing without a login', async () => {
    const s = await node(['--guests', 'off', '--public-reads', 'off']);
    const { connect, lines } = await import('@net/tcp');
    const conn = await connect<string, string>({ host: '127.0.0.1', port: s.port('tcp'), codec: lines() });
    const got: string[] = [];
    conn.on('message', (l) => got.push(l));
    clients.push({ close: () => conn.end().catch(() => {}) });
    await waitFor('LOGIN_REQUIRED', () => got.find((l) => l.startsWith('! LOGIN_REQUIRED')));
    conn.write('hello?');
    conn.write('/nick x');
    await waitFor('two more refusals', () => got.filter((l) => l.startsWith('! LOGIN_REQUIRED')).length >= 3);
    conn.write('/register ivan password-1');
    await waitFor('joined after login', () => got.find((l) => /you joined #lobby/.test(l)));
    expect((await fetch(`${s.urls.http}/api/rooms/lobby/messages`)).status).toBe(401);
    expect((await fetch(`${s.urls.http}/api/rooms`)).status).toBe(401);
  });
});

describeWithRedis('accounts across two nodes on one Redis', () => {
  beforeAll(async () => {
    if (redisAvailable()) redis = await startRedis();
  });
  it('the hijack sequence fails at every step, whichever node each step runs on', async () => {
    const [a, b] = await Promise.all([node(['--redis', redis!.url]), node(['--redis', redis!.url])]);
    await hijackSequence(a, b);
  });
});
