import http2 from 'node:http2';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, h2SessionCount, HandshakeError, type WebSocket, WebSocketServer } from '../src/index.js';
import { makeCert } from './h2-helpers.js';
import { waitFor, withTimeout } from './helpers.js';

// Each RFC 8441 WebSocket holds its HTTP/2 stream open for its lifetime, so the server's
// SETTINGS_MAX_CONCURRENT_STREAMS caps the WebSockets of one session (@net/http's h2 server
// advertises 100 by default). Beyond it the client opens another session instead of leaving the
// stream queued in the full one until the handshake times out.

let tls: { key: Buffer; cert: Buffer };
beforeAll(() => {
  tls = makeCert();
});

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function limitedServer(maxConcurrentStreams: number): Promise<{ url: string; sessions: () => number }> {
  const server = http2.createSecureServer({
    ...tls,
    settings: { enableConnectProtocol: true, maxConcurrentStreams },
  });
  let sessions = 0;
  server.on('session', () => sessions++);
  const wss = new WebSocketServer({ heartbeatInterval: 0 });
  wss.attachH2(server);
  wss.on('connection', (ws) =>
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }).catch(() => {})),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  cleanup.push(async () => {
    await wss.close();
    server.close();
  });
  return { url: `wss://localhost:${port}/`, sessions: () => sessions };
}

function roundTrip(ws: WebSocket, text: string): Promise<unknown> {
  return new Promise((resolve) => {
    ws.once('message', resolve);
    ws.send(text).catch(() => {});
  });
}

describe('HTTP/2 client pool and the server stream limit', () => {
  it('opens another session when the pooled one has no stream left (concurrent connects)', async () => {
    const { url, sessions } = await limitedServer(3);
    const options = { http2: true as const, tls: { ca: tls.cert }, handshakeTimeout: 10_000 };
    const sockets = await withTimeout(
      Promise.all(Array.from({ length: 7 }, () => connect(url, options))),
      20_000,
      'seven sockets',
    );
    cleanup.push(() => {
      for (const ws of sockets) ws.terminate();
    });
    expect(sockets.every((ws) => ws.transport === 'h2')).toBe(true);
    expect(h2SessionCount(url)).toBe(3);
    expect(sessions()).toBe(3);
    const replies = await Promise.all(sockets.map((ws, i) => roundTrip(ws, `m${i}`)));
    expect(replies).toEqual(sockets.map((_, i) => `m${i}`));
  });

  it('fills a session again once one of its WebSockets closed', async () => {
    const { url, sessions } = await limitedServer(2);
    const options = { http2: true as const, tls: { ca: tls.cert }, handshakeTimeout: 10_000 };
    const a = await connect(url, options);
    const b = await connect(url, options);
    expect(h2SessionCount(url)).toBe(1);
    await withTimeout(b.close(), 10_000, 'close b');
    // The stream is gone once the close handshake is over on both sides.
    await new Promise((r) => setTimeout(r, 100));
    const c = await connect(url, options);
    cleanup.push(() => {
      a.terminate();
      c.terminate();
    });
    expect(h2SessionCount(url)).toBe(1);
    expect(sessions()).toBe(1);
    expect(await roundTrip(c, 'again')).toBe('again');
  });

  it('fails with HandshakeError when the server allows no stream at all', async () => {
    const { url } = await limitedServer(0);
    const error = await connect(url, { http2: true, tls: { ca: tls.cert }, handshakeTimeout: 10_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).message).toMatch(/SETTINGS_MAX_CONCURRENT_STREAMS/);
    await waitFor(() => h2SessionCount(url) === 0, 5000, 'session released');
  });
});
