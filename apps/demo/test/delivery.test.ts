import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { waitFor, WsTestClient } from './helpers/clients.js';
import { eventually, type RedisInstance, describeWithRedis, startRedis } from './helpers/redis.js';
import { CLIENT_JS, type RunningServer, startServer, tempDir } from './helpers/server.js';

/**
 * The terminal client never loses a typed message: it keeps it until the server acknowledges it
 * and resends it with the same client message id after a reconnect or a STORE_FAILED, and the
 * store keeps it once. Also the store health in /healthz and /metrics.
 */
const servers: RunningServer[] = [];
const children: ChildProcess[] = [];
const clients: WsTestClient[] = [];
let redis: RedisInstance | undefined;

afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(servers.splice(0).map((s) => s.stop('SIGKILL')));
});
afterAll(async () => {
  await redis?.destroy();
});

function terminal(url: string, nick: string) {
  let out = '';
  const cli = spawn(process.execPath, [CLIENT_JS, '--url', url, '--nick', nick], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  children.push(cli);
  cli.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  cli.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { cli, out: () => out, type: (line: string) => cli.stdin!.write(`${line}\n`) };
}

async function history(s: RunningServer, room = 'lobby'): Promise<{ nick: string; text: string }[]> {
  const res = await fetch(`${s.urls.http}/api/rooms/${room}/messages?limit=1000`);
  return ((await res.json()) as { messages: { nick: string; text: string }[] }).messages;
}

async function health(s: RunningServer): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.urls.http}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('terminal client delivery', () => {
  it('sends a line typed while the server is down once the server is back, exactly once', async () => {
    const dataDir = tempDir('chat-delivery-');
    const first = await startServer({ dataDir });
    servers.push(first);
    const httpPort = first.port('http');
    const term = terminal(`ws://127.0.0.1:${httpPort}/ws`, 'term');
    await waitFor('cli joined', () => /you joined #lobby/.test(term.out()), 20_000);

    expect(await first.stop('SIGTERM')).toBe(0);
    await waitFor('cli noticed', () => /disconnected/.test(term.out()), 15_000);
    term.type('typed while the server was down');
    // More than the server's burst (10): the resends beyond it are rate limited and paced, not lost.
    const extra = Array.from({ length: 14 }, (_, i) => `offline ${i + 1}`);
    for (const line of extra) term.type(line);

    const second = await startServer({ dataDir, args: ['--http-port', String(httpPort)] });
    servers.push(second);
    const watcher = await WsTestClient.open(second.urls.http!, { nick: 'watch', room: 'lobby' });
    clients.push(watcher);
    await watcher.next('message', (f) => f.text === 'typed while the server was down', 0, 30_000);
    // A second reconnect must not send it again: it was acknowledged.
    term.type('and one more');
    await watcher.next('message', (f) => f.text === 'and one more', 0, 15_000);
    await eventually(
      'every offline line stored',
      async () => (await history(second)).filter((m) => m.nick === 'term').length >= 16,
      45_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const texts = (await history(second)).filter((m) => m.nick === 'term').map((m) => m.text);
    expect(texts).toHaveLength(16);
    expect(new Set(texts)).toEqual(new Set(['typed while the server was down', ...extra, 'and one more']));
    term.type('/quit');
  }, 90_000);

  it('stores an HTTP POST repeated with the same cid once and echoes the cid', async () => {
    const s = await startServer();
    servers.push(s);
    const ws = await WsTestClient.open(s.urls.http!, { nick: 'poster' });
    clients.push(ws);
    const token = String(ws.frames.find((f) => f.type === 'nick')!.token);
    const post = (body: unknown) =>
      fetch(`${s.urls.http}/api/rooms/lobby/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const first = await post({ text: 'posted', cid: 'http-1' });
    expect(first.status).toBe(201);
    const m1 = (await first.json()) as Record<string, unknown>;
    expect(m1).toMatchObject({ text: 'posted', cid: 'http-1' });
    const again = (await (await post({ text: 'posted', cid: 'http-1' })).json()) as Record<string, unknown>;
    expect(again.id).toBe(m1.id);
    expect((await post({ text: 'posted', cid: 7 })).status).toBe(400);
    const bad = await post({ text: 'posted', cid: 'with space' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('CID_INVALID');
    expect((await history(s)).filter((m) => m.text === 'posted')).toHaveLength(1);
  });

  it('reports the file store in /healthz and /metrics', async () => {
    const s = await startServer();
    servers.push(s);
    const h = await health(s);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', store: { store: 'file', ok: true } });
    const metrics = await (await fetch(`${s.urls.http}/metrics`)).text();
    expect(metrics).toMatch(/^chat_store_up\{store="file"\} 1$/m);
  });
});

describeWithRedis('terminal client during a Redis outage', () => {
  it('resends after STORE_FAILED until Redis is back; /healthz says 503 meanwhile', async () => {
    redis = await startRedis();
    const node = await startServer({ args: ['--redis', redis.url] });
    servers.push(node);
    expect((await health(node)).body).toMatchObject({ status: 'ok', store: { store: 'redis', ok: true } });
    const term = terminal(`${node.urls.http!.replace(/^http/, 'ws')}/ws`, 'term');
    await waitFor('cli joined', () => /you joined #lobby/.test(term.out()), 20_000);
    term.type('before the outage');
    await eventually('first stored', async () => (await history(node)).length === 1);

    await redis.stop('SIGKILL');
    await eventually('healthz 503', async () => (await health(node)).status === 503, 20_000);
    const down = await health(node);
    expect(down.body).toMatchObject({ status: 'unavailable', store: { store: 'redis', ok: false } });
    const metrics = await (await fetch(`${node.urls.http}/metrics`)).text();
    expect(metrics).toMatch(/^chat_store_up\{store="redis"\} 0$/m);

    term.type('sent during the outage');
    // The node waits 5 s for Redis, then refuses with STORE_FAILED; the client schedules a resend.
    await waitFor('STORE_FAILED', () => /STORE_FAILED: .*resending in/.test(term.out()), 30_000);
    await redis.start();
    await eventually('healthz 200', async () => (await health(node)).status === 200, 20_000);
    await eventually(
      'message stored after the outage',
      async () => (await history(node)).some((m) => m.text === 'sent during the outage'),
      45_000,
    );
    // Give any duplicate resend time to land, then count.
    await new Promise((r) => setTimeout(r, 1500));
    const texts = (await history(node)).map((m) => m.text);
    expect(texts).toEqual(['before the outage', 'sent during the outage']);
    expect(
      (await fetch(`${node.urls.http}/metrics`).then((r) => r.text())).includes(
        'chat_store_up{store="redis"} 1',
      ),
    ).toBe(true);
    term.type('/quit');
  }, 120_000);
});
