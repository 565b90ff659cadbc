import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionClosedError,
  connect,
  createWebSocketServer,
  InvalidArgumentError,
  type WebSocket,
  type WebSocketServer,
} from '../src/index.js';
import { echoServer, frame, Op, rawClient, waitFor, withTimeout } from './helpers.js';

describe('sending and backpressure', () => {
  let server: WebSocketServer;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await echoServer({ heartbeatInterval: 0, maxPayload: 8 * 1024 * 1024 }));
  });
  afterAll(async () => {
    await server.close();
  });

  it('resolves send() once flushed and reports bufferedAmount', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}`, { maxPayload: 8 * 1024 * 1024 });
    const big = Buffer.alloc(4 * 1024 * 1024, 1);
    const p = ws.send(big);
    expect(ws.bufferedAmount).toBeGreaterThan(0);
    await p;
    const echo = await new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    expect(echo.length).toBe(big.length);
    await ws.close();
  });

  it('sends fragmented messages with fin: false', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}`);
    const got = new Promise((r) => ws.once('message', (d, bin) => r([d, bin])));
    ws.send('ab', { fin: false });
    ws.send('cd', { fin: false });
    await ws.send('ef');
    expect(await got).toEqual(['abcdef', false]);
    const got2 = new Promise((r) => ws.once('message', (d, bin) => r([d, bin])));
    ws.send(new Uint8Array([1, 2]), { fin: false });
    await ws.send(new Uint8Array([3]).buffer);
    expect(await got2).toEqual([Buffer.from([1, 2, 3]), true]);
    await ws.close();
  });

  it('rejects sends after close() without unhandled rejections', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}`);
    const closing = ws.close(4000, 'done');
    ws.send('ignored'); // fire-and-forget must not crash the process
    await expect(ws.send('x')).rejects.toBeInstanceOf(ConnectionClosedError);
    await closing;
    expect(ws.readyState).toBe(3);
    expect(ws.closeCode).toBe(4000);
  });

  it('validates close() and ping() arguments', async () => {
    const ws = await connect(`ws://127.0.0.1:${port}`);
    expect(() => ws.close(1005)).toThrow(InvalidArgumentError);
    expect(() => ws.close(1000, 'x'.repeat(124))).toThrow(InvalidArgumentError);
    expect(() => ws.ping(Buffer.alloc(126))).toThrow(InvalidArgumentError);
    const pong = new Promise((r) => ws.once('pong', r));
    await ws.ping('are you there');
    expect(String(await pong)).toBe('are you there');
    await ws.close();
  });

  it('closes a slow consumer with 1008 once maxBufferedAmount is exceeded', async () => {
    const srv = await createWebSocketServer({
      heartbeatInterval: 0,
      maxBufferedAmount: 256 * 1024,
      closeTimeout: 300,
    });
    const conn = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!);
    c.socket.pause(); // never read
    const ws = await conn;
    const errors: string[] = [];
    ws.on('error', (e) => errors.push(e.code));
    const chunk = Buffer.alloc(64 * 1024);
    let sent = 0;
    while (ws.readyState === 1 && sent < 10_000) {
      ws.send(chunk);
      sent++;
    }
    expect(errors).toContain('ERR_WS_SLOW_CONSUMER');
    expect(ws.closeError?.code).toBe('ERR_WS_SLOW_CONSUMER');
    // The queued memory stays bounded: the limit plus the one send that crossed it.
    expect(ws.bufferedAmount).toBeLessThan(256 * 1024 + 2 * chunk.length + 4 * 1024 * 1024);
    await withTimeout(ws.whenClosed(), 10_000, 'slow consumer closed');
    expect(ws.closeCode).toBe(1008);
    c.socket.destroy();
    await srv.close();
  });

  it('terminates a slow consumer at once with slowConsumer: terminate', async () => {
    const srv = await createWebSocketServer({
      heartbeatInterval: 0,
      maxBufferedAmount: 128 * 1024,
      slowConsumer: 'terminate',
    });
    const conn = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!);
    c.socket.pause();
    const ws = await conn;
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 1000 && ws.readyState === 1; i++) ws.send(chunk);
    await withTimeout(ws.whenClosed(), 10_000, 'terminated');
    expect(ws.closeCode).toBe(1008);
    c.socket.destroy();
    await srv.close();
  });
});

describe('heartbeat', () => {
  it('terminates a peer that never answers pings', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 100 });
    const conn = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!); // a raw client that ignores pings
    const ws = await conn;
    await withTimeout(ws.whenClosed(), 10_000, 'heartbeat termination');
    expect(ws.closeCode).toBe(1006);
    expect(ws.closeError?.code).toBe('ERR_WS_HEARTBEAT_TIMEOUT');
    expect(c.reader.frames.some((f) => f.opcode === Op.ping)).toBe(true);
    await srv.close();
  });

  it('keeps a peer that answers pings', async () => {
    // Generous interval: under CPU contention a pong may take a while, and that must not count as dead.
    const srv = await createWebSocketServer({ heartbeatInterval: 400 });
    const conn = new Promise<WebSocket>((r) => srv.once('connection', r));
    const client = await connect(`ws://127.0.0.1:${srv.port}`); // our client answers pings
    const ws = await conn;
    let pongs = 0;
    ws.on('pong', () => pongs++);
    await waitFor(() => pongs >= 3, 15_000, 'pongs');
    expect(ws.readyState).toBe(1);
    await client.close();
    await srv.close();
  });
});

describe('async iteration and close events', () => {
  it('iterates messages until the peer closes', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    srv.on('connection', async (ws) => {
      for (let i = 0; i < 5; i++) ws.send(`m${i}`);
      ws.send(Buffer.from([9]));
      await ws.close(1000, 'bye');
    });
    const ws = await connect(`ws://127.0.0.1:${srv.port}`);
    const got: Array<string | Buffer> = [];
    for await (const msg of ws) got.push(msg);
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', Buffer.from([9])]);
    expect(ws.closeCode).toBe(1000);
    expect(ws.closeReason).toBe('bye');
    await srv.close();
  });

  it('throws the failure from the iterator when the connection fails', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    const seen: Array<string | Buffer> = [];
    const done = new Promise<unknown>((resolve) => {
      srv.on('connection', async (ws) => {
        try {
          for await (const m of ws) seen.push(m);
          resolve(null);
        } catch (e) {
          resolve(e);
        }
      });
    });
    const c = await rawClient(srv.port!);
    c.write(frame({ opcode: Op.text, payload: 'one' }), frame({ opcode: 3 }));
    const err = (await withTimeout(done, 10_000, 'iterator')) as { code: string };
    expect(seen).toEqual(['one']);
    expect(err.code).toBe('ERR_WS_PROTOCOL');
    await srv.close();
  });

  it('pauses reading when the iterator falls behind, and resumes', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    srv.on('connection', (ws) => {
      for (let i = 0; i < 200; i++) ws.send(`n${i}`);
      ws.close();
    });
    const ws = await connect(`ws://127.0.0.1:${srv.port}`, { iteratorHighWaterMark: 8 });
    const got: string[] = [];
    for await (const m of ws) {
      got.push(String(m));
      if (got.length % 50 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    expect(got.length).toBe(200);
    expect(got[199]).toBe('n199');
    await srv.close();
  });

  it('closes the connection when the loop breaks early', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    const serverSide = new Promise<WebSocket>((r) => srv.once('connection', r));
    srv.on('connection', (ws) => {
      ws.send('a');
      ws.send('b');
    });
    const ws = await connect(`ws://127.0.0.1:${srv.port}`);
    for await (const m of ws) {
      expect(m).toBe('a');
      break;
    }
    const s = await serverSide;
    await withTimeout(s.whenClosed(), 10_000, 'server side closed');
    expect(s.closeCode).toBe(1000);
    await srv.close();
  });
});

describe('server lifecycle', () => {
  it('broadcasts one prepared frame to every client and shuts down with 1001', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => connect(`ws://127.0.0.1:${srv.port}`)),
    );
    await waitFor(() => srv.clients.size === 20);
    const received = clients.map((c) => new Promise((r) => c.once('message', r)));
    expect(srv.broadcast('hello all')).toBe(20);
    expect(await Promise.all(received)).toEqual(Array(20).fill('hello all'));
    const codes = clients.map((c) => new Promise((r) => c.once('close', (code) => r(code))));
    await srv.close();
    expect(await Promise.all(codes)).toEqual(Array(20).fill(1001));
    expect(srv.clients.size).toBe(0);
  });
});

describe('terminate()', () => {
  it('stops delivering messages still in the chunk being parsed', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    const got: string[] = [];
    const conn = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!);
    const ws = await conn;
    ws.on('message', (d) => {
      got.push(String(d));
      ws.terminate();
    });
    c.socket.write(
      Buffer.concat([
        frame({ opcode: Op.text, payload: 'first' }),
        frame({ opcode: Op.text, payload: 'second' }),
      ]),
    );
    await withTimeout(ws.whenClosed(), 10_000, 'terminated');
    expect(got).toEqual(['first']);
    expect(ws.closeCode).toBe(1006);
    await srv.close();
  });
});

describe('iterator backpressure', () => {
  it('stops reading while the consumer stalls, then delivers everything and the close', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    srv.on('connection', (ws) => {
      for (let i = 0; i < 50; i++) ws.send(`m${i}`);
      ws.close(1000);
    });
    const ws = await connect(`ws://127.0.0.1:${srv.port}`, { iteratorHighWaterMark: 4 });
    const it = ws[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('m0');
    // The consumer stalls: the close frame sits unread behind the paused socket.
    await new Promise((r) => setTimeout(r, 300));
    expect(ws.readyState).toBe(1);
    let n = 1;
    for (;;) {
      const r = await withTimeout(it.next(), 10_000, 'next');
      if (r.done) break;
      n++;
    }
    expect(n).toBe(50);
    expect(ws.closeCode).toBe(1000);
    await srv.close();
  });
});
