import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import WS from 'ws';
import {
  type CreateServerOptions,
  connect,
  createWebSocketServer,
  handleUpgrade,
  InvalidArgumentError,
  type WebSocket,
  type WebSocketServer,
} from '../src/index.js';
import { rawClient, waitFor, withTimeout } from './helpers.js';

/** Every buffer the server writes to each accepted socket, observed on the real socket. */
function recordWrites(srv: WebSocketServer): Buffer[][] {
  const perSocket: Buffer[][] = [];
  srv.httpServer!.on('upgrade', (_req, socket: Duplex) => {
    const seen: Buffer[] = [];
    perSocket.push(seen);
    const write = socket.write;
    socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(chunk)) seen.push(chunk);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof socket.write;
  });
  return perSocket;
}

async function topicServer(
  options: CreateServerOptions = {},
): Promise<{ srv: WebSocketServer; conns: WebSocket[] }> {
  const srv = await createWebSocketServer({ heartbeatInterval: 0, ...options });
  const conns: WebSocket[] = [];
  srv.on('connection', (ws) => {
    conns.push(ws);
    ws.on('message', (data) => {
      const text = String(data);
      if (text.startsWith('sub ')) ws.subscribe(text.slice(4));
      else if (text.startsWith('unsub ')) ws.unsubscribe(text.slice(6));
      else if (text.startsWith('pub ')) {
        const [topic, ...rest] = text.slice(4).split(' ');
        ws.publish(topic!, rest.join(' '));
      }
    });
  });
  return { srv, conns };
}

function collect(ws: WebSocket): string[] {
  const got: string[] = [];
  ws.on('message', (d) => got.push(String(d)));
  return got;
}

describe('topics', () => {
  it('publishes to subscribers only; ws.publish skips the sender; unsubscribe stops delivery', async () => {
    const { srv, conns } = await topicServer();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => connect(`ws://127.0.0.1:${srv.port}`)));
    const got = [a!, b!, c!].map(collect);
    await a!.send('sub news');
    await b!.send('sub news');
    await c!.send('sub sport');
    await waitFor(() => srv.subscriberCount('news') === 2 && srv.subscriberCount('sport') === 1);
    expect(srv.publish('news', 'n1')).toBe(2);
    expect(srv.publish('nobody', 'x')).toBe(0);
    await a!.send('pub news from-a');
    await c!.send('pub news from-c'); // c is not subscribed but may publish
    await waitFor(() => got[0]!.length === 2 && got[1]!.length === 3);
    expect(got[0]).toEqual(['n1', 'from-c']);
    expect(got[1]).toEqual(['n1', 'from-a', 'from-c']);
    expect(got[2]).toEqual([]);
    const serverA = conns[0]!;
    expect(serverA.isSubscribed('news')).toBe(true);
    expect(serverA.topics).toEqual(['news']);
    await b!.send('unsub news');
    await waitFor(() => srv.subscriberCount('news') === 1);
    expect(srv.publish('news', 'n2')).toBe(1);
    await waitFor(() => got[0]!.length === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(got[1]).toEqual(['n1', 'from-a', 'from-c']);
    await Promise.all([a!.close(), b!.close(), c!.close()]);
    await srv.close();
  });

  it('a closed connection leaves every topic', async () => {
    const { srv, conns } = await topicServer();
    const a = await connect(`ws://127.0.0.1:${srv.port}`);
    await a.send('sub t1');
    await a.send('sub t2');
    await waitFor(() => srv.subscriberCount('t1') === 1 && srv.subscriberCount('t2') === 1);
    a.terminate();
    await withTimeout(conns[0]!.whenClosed(), 10_000, 'server side closed');
    expect(srv.subscriberCount('t1')).toBe(0);
    expect(srv.subscriberCount('t2')).toBe(0);
    expect(conns[0]!.topics).toEqual([]);
    expect(srv.publish('t1', 'x')).toBe(0);
    // A closed connection cannot subscribe again.
    expect(conns[0]!.subscribe('t1')).toBe(false);
    expect(srv.subscriberCount('t1')).toBe(0);
    await srv.close();
  });

  it('builds the frame once: every subscriber is written the same buffer', async () => {
    const { srv } = await topicServer();
    const writes = recordWrites(srv);
    const clients = await Promise.all([1, 2, 3, 4].map(() => connect(`ws://127.0.0.1:${srv.port}`)));
    const got = clients.map(collect);
    await Promise.all(clients.map((c) => c.send('sub room')));
    await waitFor(() => srv.subscriberCount('room') === 4);
    expect(srv.publish('room', 'once')).toBe(4);
    await waitFor(() => got.every((g) => g.length === 1));
    const frames = writes.map((w) => w[w.length - 1]!);
    for (const f of frames) expect(f).toBe(frames[0]);
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('compresses once for subscribers without context takeover, per socket otherwise', async () => {
    const { srv } = await topicServer({ perMessageDeflate: { threshold: 16 } });
    const writes = recordWrites(srv);
    const url = `ws://127.0.0.1:${srv.port}`;
    const shared = await Promise.all(
      [1, 2].map(() => connect(url, { perMessageDeflate: { serverNoContextTakeover: true } })),
    );
    const own = await connect(url, { perMessageDeflate: true }); // context takeover: its own compressor
    // `ws` as an independent inflater.
    const wsClient = new WS(url, { perMessageDeflate: { serverNoContextTakeover: true } });
    await new Promise((resolve, reject) => {
      wsClient.once('open', resolve);
      wsClient.once('error', reject);
    });
    const wsGot: string[] = [];
    wsClient.on('message', (d: Buffer) => wsGot.push(d.toString()));
    const ours = [...shared, own];
    const got = ours.map(collect);
    await Promise.all(ours.map((c) => c.send('sub z')));
    wsClient.send('sub z');
    await waitFor(() => srv.subscriberCount('z') === 4);
    const text = 'compress me '.repeat(200);
    expect(srv.publish('z', text)).toBe(4);
    expect(srv.publish('z', `${text}again`)).toBe(4);
    await waitFor(() => got.every((g) => g.length === 2) && wsGot.length === 2);
    for (const g of [...got, wsGot]) expect(g).toEqual([text, `${text}again`]);
    // writes[0..1] ours without takeover, writes[2] ours with takeover, writes[3] ws.
    const last = (i: number) => writes[i]!.slice(-2);
    expect(last(0)[0]).toBe(last(1)[0]);
    expect(last(0)[1]).toBe(last(1)[1]);
    expect(last(0)[0]).toBe(last(3)[0]);
    expect(last(0)[0]![0]! & 0x40).toBe(0x40); // RSV1: compressed
    expect(last(2)[0]).not.toBe(last(0)[0]);
    expect(last(2)[0]![0]! & 0x40).toBe(0x40);
    // With context takeover the second message reuses the window: smaller than a fresh one.
    expect(last(2)[1]!.length).toBeLessThan(last(0)[1]!.length);
    wsClient.close();
    await Promise.all(ours.map((c) => c.close()));
    await srv.close();
  });

  it('a subscriber that does not read is closed by the slow-consumer rule; the others get everything', async () => {
    const srv = await createWebSocketServer({
      heartbeatInterval: 0,
      maxBufferedAmount: 64 * 1024,
      slowConsumerTimeout: 200,
      closeTimeout: 200,
    });
    const conns: WebSocket[] = [];
    srv.on('connection', (ws) => {
      conns.push(ws);
      ws.subscribe('feed');
    });
    const reader = await connect(`ws://127.0.0.1:${srv.port}`);
    const received = collect(reader);
    const stalled = await rawClient(srv.port!);
    stalled.socket.pause();
    await waitFor(() => srv.subscriberCount('feed') === 2);
    const slow = conns[1]!;
    slow.on('error', () => {});
    const payload = 'p'.repeat(4096);
    let published = 0;
    const start = Date.now();
    // Bounded: until the slow one is gone (at most 4,000 messages = 16 MiB, 15 s).
    while (slow.readyState === 1 && published < 4000 && Date.now() - start < 15_000) {
      srv.publish('feed', payload);
      published++;
      expect(slow.bufferedAmount).toBeLessThanOrEqual(64 * 1024 + 4096 + 4 + 127);
      // Let the reader drain and the timer run.
      if (published % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await withTimeout(slow.whenClosed(), 10_000, 'slow subscriber closed');
    expect(slow.closeCode).toBe(1008);
    expect(slow.closeError?.code).toBe('ERR_WS_SLOW_CONSUMER');
    expect(srv.subscriberCount('feed')).toBe(1);
    await waitFor(() => received.length === published, 15_000, 'reader got every message');
    stalled.socket.destroy();
    await reader.close();
    await srv.close();
  });

  it('a publish during a fragmented send waits for the final fragment (frames never interleave)', async () => {
    for (const perMessageDeflate of [false, { threshold: 0 }] as const) {
      const { srv, conns } = await topicServer({ perMessageDeflate });
      const client = await connect(`ws://127.0.0.1:${srv.port}`, {
        perMessageDeflate: perMessageDeflate !== false,
      });
      const got = collect(client);
      await client.send('sub t');
      await waitFor(() => srv.subscriberCount('t') === 1);
      const ws = conns[0]!;
      ws.send('ab', { fin: false });
      expect(srv.publish('t', 'X')).toBe(1);
      expect(srv.broadcast('Y')).toBe(1);
      await ws.send('cd');
      await waitFor(() => got.length === 3);
      expect(got).toEqual(['abcd', 'X', 'Y']);
      await client.close();
      await srv.close();
    }
  });

  it('refuses topics on a connection without a server, and non-string topics', async () => {
    const { srv } = await topicServer();
    const client = await connect(`ws://127.0.0.1:${srv.port}`);
    expect(() => client.subscribe('x')).toThrow(InvalidArgumentError);
    expect(() => client.publish('x', 'y')).toThrow(InvalidArgumentError);
    expect(client.unsubscribe('x')).toBe(false);
    await client.close();
    await srv.close();
    // handleUpgrade without a WebSocketServer: no registry either.
    const http = await import('node:http');
    const server = http.createServer();
    const accepted = new Promise<WebSocket>((resolve) => {
      server.on('upgrade', async (req, socket, head) => {
        const ws = await handleUpgrade(req, socket, head, { heartbeatInterval: 0 });
        if (ws) resolve(ws);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const c2 = await connect(`ws://127.0.0.1:${port}`);
    const ws = await accepted;
    expect(() => ws.subscribe('x')).toThrow(InvalidArgumentError);
    const { srv: srv2, conns } = await topicServer();
    const c3 = await connect(`ws://127.0.0.1:${srv2.port}`);
    await waitFor(() => conns.length === 1);
    expect(() => conns[0]!.subscribe(42 as unknown as string)).toThrow(InvalidArgumentError);
    await Promise.all([c2.close(), c3.close()]);
    await srv2.close();
    server.close();
  });
});
