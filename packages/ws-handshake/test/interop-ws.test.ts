import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WS, { WebSocketServer as WSServer } from 'ws';
import { connect, type WebSocketServer } from '../src/index.js';
import { echoServer, withTimeout } from './helpers.js';

// Interop with the `ws` package in both directions, plain and permessage-deflate.

const big = Buffer.alloc(3 * 1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
const text = 'héllo wörld ✓ 🎉 '.repeat(5000);

for (const deflate of [false, true]) {
  describe(`our server with the ws client (deflate ${deflate})`, () => {
    let server: WebSocketServer;
    let port: number;
    beforeAll(async () => {
      ({ server, port } = await echoServer({
        heartbeatInterval: 0,
        maxPayload: 16 * 1024 * 1024,
        perMessageDeflate: deflate ? { threshold: 64 } : false,
      }));
    });
    afterAll(async () => {
      await server.close();
    });

    it('echoes text, binary, fragmented and large messages', async () => {
      const ws = new WS(`ws://127.0.0.1:${port}`, {
        perMessageDeflate: deflate,
        maxPayload: 16 * 1024 * 1024,
      });
      await new Promise((r, j) => {
        ws.once('open', r);
        ws.once('error', j);
      });
      expect(ws.extensions).toBe(deflate ? 'permessage-deflate' : '');
      const got: Array<[Buffer | string, boolean]> = [];
      ws.on('message', (d: Buffer, isBinary: boolean) => got.push([isBinary ? d : d.toString(), isBinary]));
      ws.send('short');
      ws.send(text);
      ws.send(big);
      ws.send('frag-', { fin: false });
      ws.send('ment', { fin: true });
      ws.send(Buffer.from([0, 1, 2]), { binary: true, fin: false });
      ws.send(Buffer.from([3]), { binary: true, fin: true });
      ws.send('');
      await withTimeout(
        new Promise<void>((r) => {
          const t = setInterval(() => {
            if (got.length === 6) {
              clearInterval(t);
              r();
            }
          }, 5);
        }),
        20_000,
        'echoes',
      );
      expect(got[0]).toEqual(['short', false]);
      expect(got[1]).toEqual([text, false]);
      expect((got[2]![0] as Buffer).equals(big)).toBe(true);
      expect(got[3]).toEqual(['frag-ment', false]);
      expect(got[4]).toEqual([Buffer.from([0, 1, 2, 3]), true]);
      expect(got[5]).toEqual(['', false]);
      const closed = new Promise<[number, string]>((r) =>
        ws.once('close', (c, reason) => r([c, reason.toString()])),
      );
      ws.close(4001, 'bye');
      expect((await closed)[0]).toBe(4001);
    });

    it('answers ws pings and reports ws close codes', async () => {
      const ws = new WS(`ws://127.0.0.1:${port}`, { perMessageDeflate: deflate });
      await new Promise((r) => ws.once('open', r));
      const pong = new Promise<Buffer>((r) => ws.once('pong', r));
      ws.ping('p');
      expect((await pong).toString()).toBe('p');
      const serverSide = [...server.clients].at(-1)!;
      const code = new Promise((r) => serverSide.once('close', (c) => r(c)));
      ws.close(1000);
      expect(await code).toBe(1000);
    });
  });

  describe(`our client with the ws server (deflate ${deflate})`, () => {
    let wss: WSServer;
    let port: number;
    beforeAll(async () => {
      wss = new WSServer({
        port: 0,
        host: '127.0.0.1',
        perMessageDeflate: deflate ? { threshold: 64 } : false,
        maxPayload: 16 * 1024 * 1024,
      });
      await new Promise((r) => wss.once('listening', r));
      port = (wss.address() as { port: number }).port;
      wss.on('connection', (s) => {
        s.on('message', (d, isBinary) => s.send(d, { binary: isBinary }));
      });
    });
    afterAll(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    });

    it('echoes text, binary, fragmented and large messages', async () => {
      const ws = await connect(`ws://127.0.0.1:${port}`, {
        perMessageDeflate: deflate ? { threshold: 64 } : false,
        maxPayload: 16 * 1024 * 1024,
      });
      expect(ws.extensions).toMatch(deflate ? /^permessage-deflate/ : /^$/);
      const iter = ws[Symbol.asyncIterator]();
      const next = async () => (await withTimeout(iter.next(), 20_000, 'message')).value;
      ws.send('short');
      ws.send(text);
      ws.send(big);
      ws.send('frag-', { fin: false });
      ws.send('ment');
      ws.send(Buffer.from([0, 1, 2]), { fin: false });
      ws.send(Buffer.from([3]));
      expect(await next()).toBe('short');
      expect(await next()).toBe(text);
      expect((await next()).equals(big)).toBe(true);
      expect(await next()).toBe('frag-ment');
      expect(await next()).toEqual(Buffer.from([0, 1, 2, 3]));
      await ws.close(1000, 'done');
      expect(ws.closeCode).toBe(1000);
    });

    it('gets the close code the ws server sends', async () => {
      const ws = await connect(`ws://127.0.0.1:${port}`);
      const closed = new Promise<[number, string]>((r) => ws.once('close', (c, reason) => r([c, reason])));
      for (const c of wss.clients) c.close(4002, 'server says bye');
      expect(await closed).toEqual([4002, 'server says bye']);
    });
  });
}

describe('permessage-deflate parameter interop with ws', () => {
  it('works with no_context_takeover and small windows in both directions', async () => {
    const { server, port } = await echoServer({
      heartbeatInterval: 0,
      perMessageDeflate: {
        threshold: 0,
        serverNoContextTakeover: true,
        serverMaxWindowBits: 9,
        clientMaxWindowBits: 10,
      },
    });
    const ws = new WS(`ws://127.0.0.1:${port}`, {
      perMessageDeflate: { clientNoContextTakeover: true, clientMaxWindowBits: 12, threshold: 0 },
    });
    const ext = new Promise<string>((r) =>
      ws.once('upgrade', (res) => r(String(res.headers['sec-websocket-extensions']))),
    );
    await new Promise((r) => ws.once('open', r));
    expect(await ext).toContain('server_no_context_takeover');
    expect(await ext).toContain('client_no_context_takeover');
    expect(await ext).toContain('client_max_window_bits=10');
    const msgs = Array.from({ length: 20 }, (_, i) => `message ${i} `.repeat(i * 50));
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    for (const m of msgs) ws.send(m);
    await withTimeout(
      new Promise<void>((r) => {
        const t = setInterval(() => {
          if (got.length === msgs.length) {
            clearInterval(t);
            r();
          }
        }, 5);
      }),
      20_000,
      'echoes',
    );
    expect(got).toEqual(msgs);
    ws.close();
    await server.close();
  });
});
