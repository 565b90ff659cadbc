import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import type { ClientOptions } from '@net/ws-handshake';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { TcpTestClient, WsTestClient, waitFor } from './helpers/clients.js';
import { seen } from './helpers/h2-log.js';
import { CLIENT_JS, type RunningServer, startServer, tempDir } from './helpers/server.js';

// Issue 14, apps/demo: with --tls the HTTPS port speaks HTTP/2 (ALPN h2) for the page, the JSON
// API and /ws (RFC 8441), and HTTP/1.1 on the same port. The server's debug log names the
// protocol and the client's address:port of every request and WebSocket; that is what the tests
// read to know what arrived how.

function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let text = '';
    let head: http2.IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      head = h;
    });
    stream.on('data', (d: string) => {
      text += d;
    });
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text }));
    stream.on('error', reject);
    stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) stream.end(body);
  });
}

function h2Connect(port: number, ca: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { ca });
    // Resolved with the server's SETTINGS in hand.
    session.once('remoteSettings', () => resolve(session));
    session.once('error', reject);
  });
}

function httpsGet(url: string, ca: string): Promise<{ status: number; version: string; body: string }> {
  return new Promise((resolve, reject) => {
    // node:https offers no ALPN, so the server answers in HTTP/1.1.
    const req = httpsRequest(url, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Open a WebSocket, retrying while the server still counts slots of connections just closed. */
async function waitForOpen(url: string, connect: ClientOptions): Promise<WsTestClient> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await WsTestClient.open(url, { connect });
    } catch (err) {
      if (Date.now() > end || !/503/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const children: ChildProcess[] = [];
function runClient(args: string[]) {
  let out = '';
  const child = spawn(process.execPath, [CLIENT_JS, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  children.push(child);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, out: () => out, exit };
}

describe('--tls over HTTP/2', () => {
  let server: RunningServer;
  let ca: string;
  let port: number;
  let plain: TcpTestClient;
  const sessions: http2.ClientHttp2Session[] = [];
  beforeAll(async () => {
    server = await startServer({ args: ['--tls', '--log-level', 'debug'] });
    ca = readFileSync(server.caPath!, 'utf8');
    port = server.port('https');
    plain = await TcpTestClient.open(server.port('tcp'), 'plain');
  }, 60_000);
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const s of sessions) s.destroy();
    await plain?.close();
    await server?.stop('SIGKILL');
  });

  it('serves the page and the JSON API over h2, and HTTP/1.1 on the same port', async () => {
    const session = await h2Connect(port, ca);
    sessions.push(session);
    expect(session.alpnProtocol).toBe('h2');
    expect(session.remoteSettings.enableConnectProtocol).toBe(true);
    const page = await h2Request(session, { ':path': '/' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/<html/i);
    const rooms = await h2Request(session, { ':path': '/api/rooms' });
    expect(rooms.status).toBe(200);
    expect(JSON.parse(rooms.body)).toBeTypeOf('object');
    const local = session.socket.localPort;
    await waitFor(
      'h2 requests in the log',
      () => seen(server).requests.filter((r) => r.port === local).length >= 2,
    );
    const mine = seen(server).requests.filter((r) => r.port === local);
    expect(mine.map((r) => `${r.method} ${r.path} ${r.version}`)).toEqual([
      'GET / 2.0',
      'GET /api/rooms 2.0',
    ]);

    const h1 = await httpsGet(`https://localhost:${port}/healthz`, ca);
    expect(h1).toMatchObject({ status: 200, version: '1.1' });
    await waitFor('the HTTP/1.1 request in the log', () =>
      seen(server).requests.some((r) => r.path === '/healthz' && r.version === '1.1'),
    );
  });

  it('accepts /ws as an RFC 8441 stream and as an HTTP/1.1 upgrade on the same port', async () => {
    const before = seen(server).sockets.length;
    const https = `https://127.0.0.1:${port}`;
    const overH2 = await WsTestClient.open(https, {
      nick: 'streamy',
      room: 'lobby',
      connect: { http2: true, tls: { ca } },
    });
    const overH1 = await WsTestClient.open(https, {
      nick: 'upgrader',
      room: 'lobby',
      connect: { tls: { ca } },
    });
    expect(overH2.ws.transport).toBe('h2');
    expect(overH1.ws.transport).toBe('http/1.1');
    await waitFor('both sockets in the log', () => seen(server).sockets.length >= before + 2);
    expect(
      seen(server)
        .sockets.slice(before)
        .map((s) => s.transport)
        .sort(),
    ).toEqual(['h2', 'http/1.1']);

    overH2.send({ type: 'send', room: 'lobby', text: 'from an h2 stream' });
    await overH1.next('message', (f) => f.text === 'from an h2 stream');
    await plain.waitLine(/<streamy> from an h2 stream$/);

    // The JSON API over h2 with the token the h2 WebSocket was given.
    const token = String(overH2.frames.find((f) => f.type === 'nick')?.token);
    const session = await h2Connect(port, ca);
    sessions.push(session);
    const posted = await h2Request(
      session,
      {
        ':method': 'POST',
        ':path': '/api/rooms/lobby/messages',
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
      },
      JSON.stringify({ text: 'posted over h2' }),
    );
    expect(posted.status).toBe(201);
    await overH1.next('message', (f) => f.text === 'posted over h2');
    await overH2.close();
    await overH1.close();
  });

  it('applies the Host allowlist and the Origin check to h2 requests and RFC 8441 WebSockets', async () => {
    const session = await h2Connect(port, ca);
    sessions.push(session);
    // DNS rebinding over h2: the name is in :authority (there is no Host field).
    const page = await h2Request(session, { ':path': '/', ':authority': `rebind.attacker.example:${port}` });
    expect(page.status).toBe(421);
    expect(JSON.parse(page.body).error.code).toBe('HOST_NOT_ALLOWED');
    const ws = await h2Request(session, {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/ws',
      ':authority': `rebind.attacker.example:${port}`,
      'sec-websocket-version': '13',
      origin: `https://rebind.attacker.example:${port}`,
    });
    expect(ws.status).toBe(421);
    expect(JSON.parse(ws.body).error.code).toBe('HOST_NOT_ALLOWED');
    await expect(
      WsTestClient.open(`https://127.0.0.1:${port}`, {
        origin: 'https://evil.example',
        connect: { http2: true, tls: { ca } },
      }),
    ).rejects.toThrow(/403/);
    // The session survives its refused streams.
    expect((await h2Request(session, { ':path': '/healthz' })).status).toBe(200);
  });

  itWithPeers(['curl'], 'answers curl --http2 and curl --http1.1 on the same port', () => {
    const curl = (flag: string) =>
      execFileSync(
        peerPath('curl'),
        [
          '-sS',
          flag,
          '--cacert',
          server.caPath!,
          '-o',
          '/dev/null',
          '-w',
          '%{http_version} %{http_code}',
        ].concat(`https://localhost:${port}/`),
        { encoding: 'utf8', timeout: 20_000 },
      );
    expect(curl('--http2')).toBe('2 200');
    expect(curl('--http1.1')).toBe('1.1 200');
  });

  itWithPeers(['nghttp'], 'advertises SETTINGS_ENABLE_CONNECT_PROTOCOL to nghttp', () => {
    const out = execFileSync(peerPath('nghttp'), ['-nv', `https://localhost:${port}/healthz`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toMatch(/recv SETTINGS frame[\s\S]*SETTINGS_ENABLE_CONNECT_PROTOCOL\(0x08\):1/);
    expect(out).toMatch(/:status: 200/);
  });

  it('the terminal client opens its wss:// WebSocket as an h2 stream', async () => {
    const before = seen(server).sockets.length;
    const c = runClient(['--url', `wss://127.0.0.1:${port}/ws`, '--ca', server.caPath!, '--nick', 'h2term']);
    await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000);
    c.child.stdin!.write('typed over h2\n');
    await plain.waitLine(/<h2term> typed over h2$/);
    plain.send('answer to the h2 terminal');
    await waitFor('reply', () => c.out().includes('<plain> answer to the h2 terminal'));
    expect(
      seen(server)
        .sockets.slice(before)
        .map((s) => s.transport),
    ).toEqual(['h2']);
    c.child.stdin!.write('/quit\n');
    expect(await c.exit).toBe(0);
  });

  it('the terminal client still chats over wss:// with a TLS front that offers only HTTP/1.1', async () => {
    // A TLS-terminating front like many reverse proxies: ALPN http/1.1 only, bytes relayed to the
    // demo's HTTPS port over a connection that also offers only http/1.1.
    const front = tls.createServer(
      {
        cert: readFileSync(join(server.dataDir, 'ca', 'server.pem')),
        key: readFileSync(join(server.dataDir, 'ca', 'server-key.pem')),
        ALPNProtocols: ['http/1.1'],
      },
      (client) => {
        const up = tls.connect({
          host: '127.0.0.1',
          port,
          ca,
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
        });
        client.pipe(up).pipe(client);
        client.on('error', () => up.destroy());
        up.on('error', () => client.destroy());
        client.on('close', () => up.destroy());
        up.on('close', () => client.destroy());
      },
    );
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const frontPort = (front.address() as { port: number }).port;
    try {
      const before = seen(server).sockets.length;
      const c = runClient([
        '--url',
        `wss://127.0.0.1:${frontPort}/ws`,
        '--ca',
        server.caPath!,
        '--nick',
        'h1term',
      ]);
      await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000);
      c.child.stdin!.write('typed over http/1.1\n');
      await plain.waitLine(/<h1term> typed over http\/1\.1$/);
      expect(
        seen(server)
          .sockets.slice(before)
          .map((s) => s.transport),
      ).toEqual(['http/1.1']);
      c.child.stdin!.write('/quit\n');
      expect(await c.exit).toBe(0);
    } finally {
      await new Promise<void>((r) => front.close(() => r()));
    }
  });
});

describe('--tls over HTTP/2 with --max-conns-per-address', () => {
  let server: RunningServer;
  let ca: string;
  const sessions: http2.ClientHttp2Session[] = [];
  beforeAll(async () => {
    server = await startServer({ args: ['--tls', '--max-conns-per-address', '2'] });
    ca = readFileSync(server.caPath!, 'utf8');
  }, 60_000);
  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await server?.stop('SIGKILL');
  });

  it('answers requests and WebSockets on an h2 connection over the cap with 503', async () => {
    const port = server.port('https');
    for (let i = 0; i < 3; i++) sessions.push(await h2Connect(port, ca));
    const [a, b, over] = sessions as [
      http2.ClientHttp2Session,
      http2.ClientHttp2Session,
      http2.ClientHttp2Session,
    ];
    expect((await h2Request(a, { ':path': '/healthz' })).status).toBe(200);
    expect((await h2Request(b, { ':path': '/healthz' })).status).toBe(200);
    const refused = await h2Request(over, { ':path': '/healthz' });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe('TOO_MANY_CONNECTIONS');
    const ws = await h2Request(over, {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/ws',
      ':authority': `localhost:${port}`,
      'sec-websocket-version': '13',
    });
    expect(ws.status).toBe(503);
    expect(ws.headers['retry-after']).toBe('10');
  });

  it('counts RFC 8441 WebSockets against the per-address WebSocket cap and frees a slot on close', async () => {
    for (const s of sessions.splice(0)) s.destroy();
    const url = `https://127.0.0.1:${server.port('https')}`;
    const connect = { http2: true as const, tls: { ca } };
    // The sessions just destroyed may still hold their slots for a moment.
    const first = await waitForOpen(url, connect);
    const second = await WsTestClient.open(url, { connect });
    expect([first.ws.transport, second.ws.transport]).toEqual(['h2', 'h2']);
    await expect(WsTestClient.open(url, { connect })).rejects.toThrow(/503/);
    await second.close();
    const third = await waitForOpen(url, connect);
    expect(third.ws.transport).toBe('h2');
    await first.close();
    await third.close();
  });
});

describe('--tls-only over HTTP/2', () => {
  let server: RunningServer;
  let session: http2.ClientHttp2Session | undefined;
  beforeAll(async () => {
    server = await startServer({ args: ['--tls-only'] });
  }, 60_000);
  afterAll(async () => {
    session?.destroy();
    await server?.stop('SIGKILL');
  });

  it('sends HSTS on h2 responses too', async () => {
    session = await h2Connect(server.port('https'), readFileSync(server.caPath!, 'utf8'));
    const page = await h2Request(session, { ':path': '/' });
    expect(page.status).toBe(200);
    expect(page.headers['strict-transport-security']).toBe('max-age=86400');
  });

  it('shuts down gracefully on SIGTERM: an h2 WebSocket gets bye and close 1001, exit 0', async () => {
    const ca = readFileSync(server.caPath!, 'utf8');
    const ws = await WsTestClient.open(server.urls.https!, {
      nick: 'leaver',
      room: 'lobby',
      connect: { http2: true, tls: { ca } },
    });
    expect(ws.ws.transport).toBe('h2');
    expect(await server.stop('SIGTERM')).toBe(0);
    await waitFor('ws close', () => ws.closeCode !== undefined);
    expect(ws.closeCode).toBe(1001);
    expect(ws.frames.some((f) => f.type === 'bye')).toBe(true);
    expect(server.stderr()).not.toMatch(/shutdown took longer/);
  });
});

describe('the terminal client over wss:// with h2 across a server restart', () => {
  const servers: RunningServer[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const s of servers) await s.stop('SIGKILL');
  });

  it('opens a new h2 session to the restarted server and resumes without repeats', async () => {
    const dataDir = tempDir('chat-h2-restart-');
    const first = await startServer({ dataDir, args: ['--tls', '--log-level', 'debug'] });
    servers.push(first);
    const httpsPort = first.port('https');
    const c = runClient([
      '--url',
      `wss://127.0.0.1:${httpsPort}/ws`,
      '--ca',
      first.caPath!,
      '--nick',
      'term',
    ]);
    await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000);
    const web1 = await WsTestClient.open(first.urls.http!, { nick: 'web', room: 'lobby' });
    web1.send({ type: 'send', room: 'lobby', text: 'before restart' });
    await waitFor('before', () => c.out().includes('<web> before restart'));
    expect(seen(first).sockets.map((s) => s.transport)).toEqual(['h2']);

    expect(await first.stop('SIGTERM')).toBe(0);
    await waitFor('client noticed', () => /disconnected/.test(c.out()));
    // Same data directory (same dev CA) and HTTPS port.
    const second = await startServer({
      dataDir,
      args: ['--tls', '--log-level', 'debug', '--https-port', String(httpsPort)],
    });
    servers.push(second);
    const web2 = await WsTestClient.open(second.urls.http!, { nick: 'web', room: 'lobby' });
    web2.send({ type: 'send', room: 'lobby', text: 'during reconnect', ref: 'd' });
    await web2.next('ack', (f) => f.ref === 'd');
    await waitFor('during', () => c.out().includes('<web> during reconnect'), 20_000);
    c.child.stdin!.write('still here\n');
    await web2.next('message', (f) => f.nick === 'term' && f.text === 'still here');
    expect(seen(second).sockets.map((s) => s.transport)).toEqual(['h2']);
    const count = (text: string) => c.out().split(text).length - 1;
    expect(count('<web> before restart')).toBe(1);
    expect(count('<web> during reconnect')).toBe(1);
    c.child.stdin!.write('/quit\n');
    expect(await c.exit).toBe(0);
    await web2.close();
  }, 60_000);
});
