import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpTestClient, waitFor, WsTestClient } from './helpers/clients.js';
import { type RunningServer, startServer } from './helpers/server.js';

let server: RunningServer;
let http: string;

beforeAll(async () => {
  server = await startServer({ args: ['--rate', '5', '--burst', '10'] });
  http = server.urls.http!;
});
afterAll(async () => {
  await server?.stop('SIGKILL');
});

describe('server process', () => {
  it('prints the address of every listener and answers health and metrics', async () => {
    expect(Object.keys(server.urls).sort()).toEqual(['http', 'tcp', 'udp']);
    const health = await (await fetch(`${http}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok' });
    const res = await fetch(`${http}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = await res.text();
    expect(text).toMatch(/# TYPE chat_connections gauge/);
    expect(text).toMatch(/# TYPE chat_rejected_inputs_total counter/);
  });

  it('shares one room between a TCP user, a WebSocket user and the HTTP API', async () => {
    const tcp = await TcpTestClient.open(server.port('tcp'), 'netcat');
    const ws = await WsTestClient.open(http, { nick: 'webby', room: 'lobby' });
    tcp.send('hello from tcp');
    await ws.next('message', (f) => f.nick === 'netcat' && f.text === 'hello from tcp');
    ws.send({ type: 'send', room: 'lobby', text: 'hello from ws', ref: 'a1' });
    const ack = await ws.next('ack', (f) => f.ref === 'a1');
    expect(ack.id).toMatch(/^\d+-\d+$/);
    await tcp.waitLine(/^\[lobby\] <webby> hello from ws$/);

    const token = (ws.frames.find((f) => f.type === 'nick') as unknown as { token: string }).token;
    const post = await fetch(`${http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello from curl' }),
    });
    expect(post.status).toBe(201);
    const posted = (await post.json()) as { id: string; nick: string };
    expect(posted.nick).toBe('webby');
    await tcp.waitLine(/^\[lobby\] <webby> hello from curl$/);

    // The TCP login issues tokens too.
    tcp.send('/token');
    const tokenLine = await tcp.waitLine(/^\* token for netcat: /);
    const viaTcp = await fetch(`${http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenLine.split(': ')[1]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'posted with a tcp token' }),
    });
    expect(viaTcp.status).toBe(201);
    await ws.next('message', (f) => f.nick === 'netcat' && f.text === 'posted with a tcp token');

    const rooms = await (await fetch(`${http}/api/rooms`)).json();
    expect(rooms.rooms).toContainEqual({ room: 'lobby', members: 2 });
    const hist = await (await fetch(`${http}/api/rooms/lobby/messages?after=${ack.id}&limit=10`)).json();
    expect(hist.messages.map((m: { text: string }) => m.text)).toEqual([
      'hello from curl',
      'posted with a tcp token',
    ]);
    await tcp.close();
    await ws.close();
  });

  it('refuses hostile input on TCP with error lines and stays up for others', async () => {
    const bystander = await WsTestClient.open(http, { nick: 'bystander', room: 'lobby' });
    const evil = await TcpTestClient.open(server.port('tcp'), 'evil');
    evil.sendRaw(`${'x'.repeat(100_000)}\n`);
    await evil.waitLine(/^! LINE_TOO_LONG/);
    evil.sendRaw(Buffer.from([0xc3, 0x28, 0xff, 0x0a]));
    await evil.waitLine(/^! INVALID_UTF8/);
    evil.send('bell \u0007 and \u001b[2J escape');
    await evil.waitLine(/^! TEXT_INVALID/);
    for (let i = 0; i < 30; i++) evil.send(`flood ${i}`);
    await evil.waitLine(/^! RATE_LIMITED: slow down/);
    // The connection survived all of it.
    evil.send('/who');
    await evil.waitLine(/^\* in #lobby: /);
    const floodSeen = bystander.messages().filter((m) => String(m.text).startsWith('flood')).length;
    expect(floodSeen).toBeLessThanOrEqual(10);
    const other = await WsTestClient.open(http, { nick: 'other', room: 'lobby' });
    other.send({ type: 'send', room: 'lobby', text: 'still fine', ref: 'ok' });
    await bystander.next('message', (f) => f.text === 'still fine');
    await evil.close();
    await other.close();
    await bystander.close();
  });

  it('refuses hostile input on WebSocket: bad JSON, binary, unknown types, flood, oversize, bad origin', async () => {
    const c = await WsTestClient.open(http, { nick: 'wsevil', room: 'lobby' });
    c.send('{not json');
    await c.next('error', (f) => f.code === 'BAD_JSON');
    void c.ws.send(Buffer.from([1, 2, 3]));
    await c.next('error', (f) => f.code === 'BAD_FRAME');
    c.send({ type: 'launch-missiles' });
    await c.next('error', (f) => f.code === 'UNKNOWN_TYPE');
    c.send({ type: 'send', room: 'lobby', text: 'y'.repeat(3000), ref: 'long' });
    await c.next('error', (f) => f.code === 'TEXT_TOO_LONG' && f.ref === 'long');
    c.send({ type: 'join', room: 'lobby', after: "1'; DROP TABLE" });
    await c.next('error', (f) => f.code === 'BAD_ID');
    for (let i = 0; i < 30; i++) c.send({ type: 'send', room: 'lobby', text: `f${i}` });
    const limited = await c.next('error', (f) => f.code === 'RATE_LIMITED');
    expect(String(limited.message)).toMatch(/slow down/);
    c.send({ type: 'ping', ref: 'alive' });
    await c.next('pong', (f) => f.ref === 'alive');

    await expect(WsTestClient.open(http, { origin: 'http://evil.example' })).rejects.toThrow(/403/);

    const big = await WsTestClient.open(http);
    big.send(JSON.stringify({ type: 'send', room: 'lobby', text: 'z'.repeat(100_000) }));
    await waitFor('close 1009', () => big.closeCode === 1009);
    await c.close();
  });

  it('refuses bad HTTP input with clear JSON errors', async () => {
    const unauth = await fetch(`${http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"x"}',
    });
    expect(unauth.status).toBe(401);
    const forged = await fetch(`${http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer v1.chat.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        'content-type': 'application/json',
      },
      body: '{"text":"x"}',
    });
    expect(forged.status).toBe(401);
    expect((await (await fetch(`${http}/api/rooms/lobby/messages?limit=abc`)).json()).error.code).toBe(
      'BAD_LIMIT',
    );
    expect((await fetch(`${http}/api/rooms/Bad%20Room!/messages`)).status).toBe(400);
    const ws = await WsTestClient.open(http);
    const token = (ws.frames[0] as unknown as { token: string }).token;
    const huge = await fetch(`${http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'q'.repeat(200_000) }),
    });
    expect(huge.status).toBe(413);
    await ws.close();
  });

  it('ignores garbage UDP datagrams and still answers health checks', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    for (let i = 0; i < 50; i++) sock.send(Buffer.alloc(i * 20, i), server.port('udp'), '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    sock.close();
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect(server.proc.exitCode).toBeNull();
  });

  it('exits 0 on SIGINT right after printing ready', async () => {
    const other = await startServer();
    expect(await other.stop('SIGINT')).toBe(0);
    expect(other.stderr()).toMatch(/SIGINT: shutting down/);
  });

  it('shuts down gracefully on SIGTERM: WebSocket close 1001, TCP goodbye, exit 0', async () => {
    const ws = await WsTestClient.open(http, { nick: 'leaver', room: 'lobby' });
    const tcp = await TcpTestClient.open(server.port('tcp'));
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    await waitFor('ws close', () => ws.closeCode !== undefined);
    expect(ws.closeCode).toBe(1001);
    expect(ws.frames.some((f) => f.type === 'bye')).toBe(true);
    await tcp.waitLine(/shutting down/);
    await waitFor('tcp closed', () => tcp.closed);
    expect(server.stderr()).not.toMatch(/shutdown took longer/);
  });
});
