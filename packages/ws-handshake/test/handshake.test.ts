import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  computeAcceptKey,
  connect,
  createWebSocketServer,
  HandshakeError,
  handleUpgrade,
  validateUpgradeRequest,
  type WebSocket,
  type WebSocketServer,
} from '../src/index.js';
import { rawClient, rawRequest, waitFor } from './helpers.js';

describe('accept key (RFC 6455 §1.3 example)', () => {
  it('matches the RFC sample', () => {
    expect(computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });
});

describe('request validation, sans-I/O', () => {
  const good = {
    method: 'GET',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    headers: {
      host: 'x',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version': '13',
    },
  };
  it('accepts a valid request with token lists in any case', () => {
    const v = validateUpgradeRequest({
      ...good,
      headers: { ...good.headers, upgrade: 'WebSocket', connection: 'keep-alive, UPGRADE' },
    });
    expect(v.ok).toBe(true);
  });
  it.each([
    ['POST', {}, 405],
    ['GET', { upgrade: 'h2c' }, 400],
    ['GET', { connection: 'keep-alive' }, 400],
    ['GET', { 'sec-websocket-key': 'short' }, 400],
    ['GET', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ' }, 400],
    ['GET', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==' }, 400],
    ['GET', { 'sec-websocket-version': '8' }, 426],
    ['GET', { 'sec-websocket-version': undefined }, 426],
    ['GET', { 'sec-websocket-protocol': 'a, a' }, 400],
    ['GET', { 'sec-websocket-protocol': 'a b' }, 400],
    ['GET', { host: undefined }, 400],
  ] as const)('%s with %o is refused with %i', (method, headers, status) => {
    const v = validateUpgradeRequest({ ...good, method, headers: { ...good.headers, ...headers } });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.status).toBe(status);
  });
  it('refuses HTTP/1.0', () => {
    const v = validateUpgradeRequest({ ...good, httpVersionMinor: 0 });
    expect(v.ok ? 0 : v.status).toBe(400);
  });
});

describe('server handshake over real sockets', () => {
  let server: WebSocketServer;
  let port: number;
  const authorized: string[] = [];
  beforeAll(async () => {
    server = await createWebSocketServer({
      heartbeatInterval: 0,
      allowedOrigins: ['https://chat.example'],
      protocols: ['v2.chat', 'v1.chat'],
      authorize: async (req) => {
        const auth = req.headers.authorization;
        if (auth === 'Bearer slow') await new Promise((r) => setTimeout(r, 50));
        if (auth === 'Bearer teapot')
          return { status: 418, body: 'no coffee', headers: { 'X-Why': 'teapot' } };
        if (auth === 'Bearer no') return false;
        if (auth === 'Bearer throw') throw new Error('db down');
        authorized.push(auth ?? '');
        return true;
      },
    });
    port = server.port!;
  });
  afterAll(async () => {
    await server.close();
  });

  it('completes the handshake and returns the accept key', async () => {
    const c = await rawClient(port, { headers: { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    expect(c.response).toMatch(/^HTTP\/1\.1 101 /);
    expect(c.response).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    c.socket.destroy();
  });

  it('answers 426 with Sec-WebSocket-Version: 13 to another version', async () => {
    const c = await rawClient(port, { headers: { 'Sec-WebSocket-Version': '8' }, expectStatus: 426 });
    expect(c.response).toContain('Sec-WebSocket-Version: 13');
    c.socket.destroy();
  });

  it('answers 400 to a missing key and 405 to POST', async () => {
    (await rawClient(port, { headers: { 'Sec-WebSocket-Key': '' }, expectStatus: 400 })).socket.destroy();
    const r = await rawRequest(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(r.status).toBe(405);
  });

  it('answers a plain HTTP request with 426', async () => {
    const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(426);
  });

  it('enforces the origin allowlist with 403 and accepts listed origins case-insensitively', async () => {
    (
      await rawClient(port, { headers: { Origin: 'https://evil.example' }, expectStatus: 403 })
    ).socket.destroy();
    (await rawClient(port, { headers: { Origin: 'HTTPS://CHAT.example' } })).socket.destroy();
  });

  it('lets authorize reject with any status, 401 for false, 500 for a throw', async () => {
    const teapot = await rawClient(port, { headers: { Authorization: 'Bearer teapot' }, expectStatus: 418 });
    expect(teapot.response).toContain('X-Why: teapot');
    teapot.socket.destroy();
    (await rawClient(port, { headers: { Authorization: 'Bearer no' }, expectStatus: 401 })).socket.destroy();
    (
      await rawClient(port, { headers: { Authorization: 'Bearer throw' }, expectStatus: 500 })
    ).socket.destroy();
    (await rawClient(port, { headers: { Authorization: 'Bearer slow' } })).socket.destroy();
    expect(authorized).toContain('Bearer slow');
  });

  it('selects the first client protocol the server supports', async () => {
    const c = await rawClient(port, { headers: { 'Sec-WebSocket-Protocol': 'v3.chat, v1.chat, v2.chat' } });
    expect(c.response).toContain('Sec-WebSocket-Protocol: v1.chat');
    c.socket.destroy();
    const none = await rawClient(port, { headers: { 'Sec-WebSocket-Protocol': 'other' } });
    expect(none.response).not.toMatch(/Sec-WebSocket-Protocol/i);
    none.socket.destroy();
  });

  it('keeps frames that arrive in the same packet as the request (head)', async () => {
    const got: string[] = [];
    const onConn = (ws: WebSocket) => ws.on('message', (d) => got.push(String(d)));
    server.on('connection', onConn);
    const net = await import('node:net');
    const { frame } = await import('./helpers.js');
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write(
      Buffer.concat([
        Buffer.from(
          'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        ),
        frame({ opcode: 1, payload: 'early bird' }),
      ]),
    );
    await waitFor(() => got.includes('early bird'));
    server.off('connection', onConn);
    s.destroy();
  });
});

describe('handleUpgrade on a bare node:http server', () => {
  let http: Server;
  let port: number;
  beforeAll(async () => {
    http = createServer((_req, res) => res.end('plain http'));
    http.on('upgrade', async (req, socket, head) => {
      const ws = await handleUpgrade(req, socket, head, {
        heartbeatInterval: 0,
        handleProtocols: (offered) => (offered.includes('json') ? 'json' : false),
      });
      ws?.on('message', (data) => ws.send(`echo:${data}`));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    port = (http.address() as AddressInfo).port;
  });
  afterAll(async () => {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  it('upgrades, negotiates via handleProtocols and talks to our client', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}/room?x=1`, { protocols: ['xml', 'json'] });
    expect(ws.protocol).toBe('json');
    const reply = new Promise((r) => ws.once('message', r));
    await ws.send('hi');
    expect(await reply).toBe('echo:hi');
    await ws.close();
  });

  it('leaves ordinary requests to the HTTP handler', async () => {
    const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
  });

  it('rejects the client when the server answers with a non-101 status', async () => {
    const refuse = createServer();
    refuse.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await new Promise<void>((r) => refuse.listen(0, '127.0.0.1', r));
    const p = (refuse.address() as AddressInfo).port;
    const err = await connect(`ws://127.0.0.1:${p}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(403);
    expect((err as HandshakeError).code).toBe('ERR_WS_HANDSHAKE');
    refuse.close();
  });
});

describe('shutdown during a pending handshake', () => {
  it('closes with 1001 a connection whose authorize finished after close() began', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const server = await createWebSocketServer({
      heartbeatInterval: 0,
      authorize: async () => {
        await gate;
        return true;
      },
    });
    const pending = connect(`ws://127.0.0.1:${server.port}`);
    await waitFor(() => server.httpServer !== null);
    await new Promise((r) => setTimeout(r, 50));
    const closing = server.close();
    release();
    const ws = await pending;
    const code = await new Promise((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1001);
    await closing;
    expect(server.clients.size).toBe(0);
  });
});
