import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  createWebSocketServer,
  h2SessionCount,
  HandshakeError,
  AbortedError,
  HandshakeTimeoutError,
  Http2UnsupportedError,
  type WebSocket,
  WebSocketServer,
} from '../src/index.js';
import { h2Server, makeCert } from './h2-helpers.js';
import { waitFor, withTimeout } from './helpers.js';

// connect(url, { http2 }) against our own RFC 8441 server (node:http2 + attachH2) over TLS.

let tls: { key: Buffer; cert: Buffer };
beforeAll(() => {
  tls = makeCert();
});

function echo(wss: WebSocketServer, accepted: WebSocket[]): void {
  wss.on('connection', (ws) => {
    accepted.push(ws);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
  });
}

function roundTrip(ws: WebSocket, data: string | Buffer): Promise<unknown> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(d));
    ws.send(data).catch(() => {});
  });
}

describe('connect({ http2: true })', () => {
  let server: http2.Http2SecureServer;
  let url: string;
  let wss: WebSocketServer;
  const accepted: WebSocket[] = [];
  beforeAll(async () => {
    const s = await h2Server(tls);
    server = s.server;
    url = `wss://localhost:${s.port}/chat`;
    wss = new WebSocketServer({
      heartbeatInterval: 0,
      perMessageDeflate: true,
      authorize: (req) => req.headers['x-token'] !== 'bad',
    });
    wss.attachH2(server);
    echo(wss, accepted);
  });
  afterAll(async () => {
    await wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('opens a WebSocket as an h2 stream and exchanges messages with deflate and a subprotocol', async () => {
    const ws = await connect(url, {
      http2: true,
      tls: { ca: tls.cert },
      protocols: ['v1', 'v2'],
      perMessageDeflate: true,
    });
    expect(ws.transport).toBe('h2');
    expect(ws.protocol).toBe('v1');
    expect(ws.extensions).toMatch(/^permessage-deflate/);
    expect(await roundTrip(ws, 'x'.repeat(5000))).toBe('x'.repeat(5000));
    expect(await roundTrip(ws, Buffer.from([9, 8, 7]))).toEqual(Buffer.from([9, 8, 7]));
    await withTimeout(ws.close(1000, 'done'), 10_000, 'close');
    expect(ws.closeCode).toBe(1000);
    expect(ws.closeError).toBeUndefined();
    const server = accepted.at(-1)!;
    await withTimeout(server.whenClosed(), 10_000, 'server closed');
    expect(server.transport).toBe('h2');
    expect(server.closeCode).toBe(1000);
  });

  it('shares one session per origin among many sockets and closes it after the last one', async () => {
    const before = accepted.length;
    const n = 12;
    const sockets = await Promise.all(
      Array.from({ length: n }, () => connect(url, { http2: true, tls: { ca: tls.cert } })),
    );
    expect(h2SessionCount(url)).toBe(1);
    await waitFor(() => accepted.length === before + n);
    const sessions = new Set(
      accepted
        .slice(before)
        .map((ws) => (ws as unknown as { socket: http2.ServerHttp2Stream }).socket.session),
    );
    expect(sessions.size).toBe(1);
    const replies = await Promise.all(sockets.map((ws, i) => roundTrip(ws, `m${i}`)));
    expect(replies).toEqual(sockets.map((_, i) => `m${i}`));
    // A socket opened later while others are still open reuses the session too.
    const late = await connect(url, { http2: true, tls: { ca: tls.cert } });
    expect(h2SessionCount(url)).toBe(1);
    await Promise.all([...sockets, late].map((ws) => withTimeout(ws.close(), 10_000, 'close')));
    await waitFor(() => h2SessionCount(url) === 0, 10_000, 'session released');
  });

  it('fails a refused handshake with HandshakeError and its status', async () => {
    const error = await connect(url, {
      http2: true,
      tls: { ca: tls.cert },
      headers: { 'X-Token': 'bad' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).status).toBe(401);
    await waitFor(() => h2SessionCount(url) === 0, 10_000, 'session released');
  });
});

describe('servers without RFC 8441', () => {
  it('fails with Http2UnsupportedError when SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised', async () => {
    const { server, port } = await h2Server(tls, false);
    try {
      const error = await connect(`wss://localhost:${port}/`, { http2: true, tls: { ca: tls.cert } }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Http2UnsupportedError);
      expect((error as Http2UnsupportedError).code).toBe('ERR_WS_H2_UNSUPPORTED');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("'auto' falls back to HTTP/1.1 when ALPN does not select h2, on the same connection", async () => {
    const wss = await createWebSocketServer({ tls, heartbeatInterval: 0 });
    let connections = 0;
    wss.httpServer!.on('secureConnection', () => connections++);
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    try {
      const url = `wss://localhost:${wss.port}/`;
      const error = await connect(url, { http2: true, tls: { ca: tls.cert } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Http2UnsupportedError);
      const before = connections;
      const ws = await connect(url, { http2: 'auto', tls: { ca: tls.cert } });
      expect(ws.transport).toBe('http/1.1');
      expect(await roundTrip(ws, 'fallback')).toBe('fallback');
      expect(connections - before).toBe(1);
      await withTimeout(ws.close(), 10_000, 'close');
    } finally {
      await wss.close();
    }
  });

  it("'auto' uses HTTP/1.1 when the server speaks h2 without extended CONNECT", async () => {
    const server = http2.createSecureServer({ ...tls, allowHTTP1: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const wss = new WebSocketServer({ heartbeatInterval: 0 });
    wss.attach(server as unknown as import('node:https').Server);
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    try {
      const port = (server.address() as { port: number }).port;
      const ws = await connect(`wss://localhost:${port}/`, { http2: 'auto', tls: { ca: tls.cert } });
      expect(ws.transport).toBe('http/1.1');
      expect(await roundTrip(ws, 'h1')).toBe('h1');
      await withTimeout(ws.close(), 10_000, 'close');
    } finally {
      await wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('aborts a pending CONNECT with the signal and releases the session', async () => {
    const { server, port } = await h2Server(tls);
    let streams = 0;
    server.on('stream', () => streams++);
    try {
      const controller = new AbortController();
      const pending = connect(`wss://localhost:${port}/`, {
        http2: true,
        tls: { ca: tls.cert },
        signal: controller.signal,
      }).catch((e: unknown) => e);
      // Abort once the CONNECT is on the wire: the stream must be reset for the session to go.
      await waitFor(() => streams === 1, 10_000, 'CONNECT received');
      expect(h2SessionCount(`wss://localhost:${port}/`)).toBe(1);
      controller.abort(new Error('user left'));
      const error = await pending;
      expect(error).toBeInstanceOf(AbortedError);
      await waitFor(() => h2SessionCount(`wss://localhost:${port}/`) === 0, 10_000, 'session released');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('times out when the server never answers the CONNECT', async () => {
    const { server, port } = await h2Server(tls);
    server.on('stream', () => {});
    try {
      const started = Date.now();
      const error = await connect(`wss://localhost:${port}/`, {
        http2: true,
        tls: { ca: tls.cert },
        timeout: 300,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HandshakeTimeoutError);
      expect(Date.now() - started).toBeLessThan(8000);
      await waitFor(() => h2SessionCount(`wss://localhost:${port}/`) === 0, 10_000, 'session released');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
