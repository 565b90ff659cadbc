import { createServer, type Server } from '@net/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, h2SessionCount, HandshakeError, type WebSocket, WebSocketServer } from '../src/index.js';
import { h2Session, makeCert, rawConnect, readBody } from './h2-helpers.js';
import { waitFor, withTimeout } from './helpers.js';

// Through @net/http's HTTP/2 server (its generic `h2connect()` hook): page and WebSockets share
// one TLS connection. @net/http is a devDependency for this test only.

describe('@net/http h2 server with h2connect() → WebSocketServer.handleH2Stream', () => {
  let tls: { key: Buffer; cert: Buffer };
  let app: Server;
  let port: number;
  const wss = new WebSocketServer({ heartbeatInterval: 0 });
  const accepted: WebSocket[] = [];
  beforeAll(async () => {
    tls = makeCert();
    app = createServer({ tls, http2: true });
    app.get('/api/hello', () => ({ hello: 'world' }));
    app.h2connect('/ws/:room', (stream, headers) => wss.handleH2Stream(stream, headers));
    wss.on('connection', (ws) => {
      accepted.push(ws);
      ws.on('message', (data) => ws.send(`${ws.url}: ${data}`));
    });
    ({ port } = await app.listen(0, '127.0.0.1'));
  });
  afterAll(async () => {
    await wss.close();
    await app.close({ deadline: 500 });
  });

  it('opens WebSockets over HTTP/2 on one session and refuses unknown paths with 404', async () => {
    const url = `wss://localhost:${port}/ws/lobby`;
    const [a, b] = await Promise.all([
      connect(url, { http2: true, tls: { ca: tls.cert } }),
      connect(`${url}?x=1`, { http2: true, tls: { ca: tls.cert } }),
    ]);
    expect(a.transport).toBe('h2');
    expect(h2SessionCount(url)).toBe(1);
    const reply = new Promise<string>((resolve) => a.once('message', (d) => resolve(String(d))));
    await a.send('hi');
    expect(await withTimeout(reply, 10_000, 'reply')).toBe('/ws/lobby: hi');
    await waitFor(() => accepted.length === 2);
    const sessions = new Set(
      accepted.map((ws) => (ws as unknown as { socket: { session: unknown } }).socket.session),
    );
    expect(sessions.size).toBe(1);

    const refused = await connect(`wss://localhost:${port}/elsewhere`, {
      http2: true,
      tls: { ca: tls.cert },
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).status).toBe(404);

    await Promise.all([a, b].map((ws) => withTimeout(ws.close(), 10_000, 'close')));
    expect(a.closeCode).toBe(1000);
  });

  it('serves an API call and a WebSocket on the same client session', async () => {
    const session = await h2Session(`https://127.0.0.1:${port}`, tls.cert);
    try {
      const api = session.request({ ':path': '/api/hello' });
      expect(JSON.parse(await readBody(api))).toEqual({ hello: 'world' });
      const before = accepted.length;
      const { status, stream } = await rawConnect(session, '/ws/side');
      expect(status).toBe(200);
      await waitFor(() => accepted.length === before + 1);
      expect(accepted.at(-1)!.transport).toBe('h2');
      stream.close();
      await withTimeout(accepted.at(-1)!.whenClosed(), 10_000, 'closed');
      expect(accepted.at(-1)!.closeCode).toBe(1006);
    } finally {
      session.close();
    }
  });
});
