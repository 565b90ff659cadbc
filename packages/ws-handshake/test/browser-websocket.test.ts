import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserWebSocket, CloseEvent, ErrorEvent, WebSocketServer } from '../src/index.js';
import { withTimeout } from './helpers.js';

// BrowserWebSocket behaviour the spec defines and Node 24's WebSocket gets wrong or lacks (the
// common surface is covered by browser-websocket-diff.test.ts), plus the Node-only extras.

let wss: WebSocketServer;
let base: string;
const received: Array<{ path: string; data: unknown; headers: Record<string, unknown> }> = [];

beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1', heartbeatInterval: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  base = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => {
      received.push({
        path: req.url ?? '',
        data: isBinary ? [...(data as Buffer)] : data,
        headers: req.headers,
      });
      ws.send(data, { binary: isBinary }).catch(() => {});
    });
  });
});

afterAll(async () => {
  await wss.close();
});

function events(ws: BrowserWebSocket): Promise<Event[]> {
  const seen: Event[] = [];
  return withTimeout(
    new Promise((resolve) => {
      for (const type of ['open', 'message', 'error', 'close']) {
        ws.addEventListener(type, (event) => {
          seen.push(event);
          if (type === 'close') setTimeout(() => resolve(seen), 50);
        });
      }
    }),
    10_000,
    'close event',
  );
}

function opened(ws: BrowserWebSocket): Promise<void> {
  return withTimeout(
    new Promise((resolve, fail) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('close', () => fail(new Error('closed before open')));
    }),
    10_000,
    'open',
  );
}

function nextData(ws: BrowserWebSocket): Promise<unknown> {
  return withTimeout(
    new Promise((resolve) =>
      ws.addEventListener('message', (e) => resolve((e as MessageEvent).data), { once: true }),
    ),
    10_000,
    'message',
  );
}

describe('BrowserWebSocket (spec behaviour)', () => {
  it('close() while connecting: CLOSING at once, then one error and one close (1006), later', async () => {
    const ws = new BrowserWebSocket(`${base}/`);
    const all = events(ws);
    let duringClose = 0;
    ws.addEventListener('close', () => duringClose++);
    ws.close();
    expect(duringClose).toBe(0);
    expect(ws.readyState).toBe(BrowserWebSocket.CLOSING);
    const seen = await all;
    expect(seen.map((e) => e.type)).toEqual(['error', 'close']);
    const close = seen[1] as CloseEvent;
    expect(close).toBeInstanceOf(CloseEvent);
    expect([close.code, close.wasClean, close.reason]).toEqual([1006, false, '']);
    expect(ws.readyState).toBe(BrowserWebSocket.CLOSED);
  });

  it('send() after close() drops the data but counts it in bufferedAmount', async () => {
    const ws = new BrowserWebSocket(`${base}/`);
    expect(ws.bufferedAmount).toBe(0);
    await opened(ws);
    ws.close(1000);
    ws.send('12345');
    ws.send(new Uint8Array(3));
    expect(ws.bufferedAmount).toBe(8);
  });

  it('on* handler attributes: one registration, replaceable, null removes, this is the socket', async () => {
    const ws = new BrowserWebSocket(`${base}/`);
    const calls: string[] = [];
    ws.onmessage = () => calls.push('first');
    ws.onmessage = function (this: BrowserWebSocket, e) {
      calls.push(`second:${(e as MessageEvent).data}:${this === ws}`);
    };
    expect(typeof ws.onmessage).toBe('function');
    ws.onopen = () => ws.send('a');
    await opened(ws);
    await nextData(ws);
    ws.onmessage = null;
    expect(ws.onmessage).toBeNull();
    ws.send('b');
    await nextData(ws);
    expect(calls).toEqual(['second:a:true']);
    ws.close();
  });

  it("binaryType 'nodebuffer' gives Buffers; unknown values are ignored", async () => {
    const ws = new BrowserWebSocket(`${base}/`);
    expect(ws.binaryType).toBe('blob');
    ws.binaryType = 'nodebuffer';
    (ws as { binaryType: string }).binaryType = 'bogus';
    expect(ws.binaryType).toBe('nodebuffer');
    await opened(ws);
    ws.send(new Uint8Array([7, 8]));
    const data = await nextData(ws);
    expect(Buffer.isBuffer(data)).toBe(true);
    expect([...(data as Buffer)]).toEqual([7, 8]);
    ws.close();
  });

  it('a Blob and the sends after it leave in call order', async () => {
    const ws = new BrowserWebSocket(`${base}/order`);
    await opened(ws);
    let echoed = 0;
    const four = withTimeout(
      new Promise<void>((resolve) => ws.addEventListener('message', () => ++echoed === 4 && resolve())),
      10_000,
      'four echoes',
    );
    ws.send(new Blob([new Uint8Array([1])]));
    ws.send('two');
    ws.send(new Blob(['three']));
    ws.send(new Uint8Array([4]));
    await four;
    expect(received.filter((r) => r.path === '/order').map((r) => r.data)).toEqual([
      [1],
      'two',
      [...Buffer.from('three')],
      [4],
    ]);
    ws.close();
  });

  it('options: an options object as second argument (Node style), connect() options as third', async () => {
    const ws = new BrowserWebSocket(`${base}/opts`, { protocols: ['p1'], headers: { 'x-one': '1' } });
    await opened(ws);
    expect(ws.protocol).toBe('p1');
    ws.send('x');
    await nextData(ws);
    const ws2 = new BrowserWebSocket(`${base}/opts2`, 'p2', { headers: { 'x-two': '2' } });
    await opened(ws2);
    expect(ws2.protocol).toBe('p2');
    ws2.send('y');
    await nextData(ws2);
    expect(received.find((r) => r.path === '/opts')?.headers['x-one']).toBe('1');
    expect(received.find((r) => r.path === '/opts2')?.headers['x-two']).toBe('2');
    ws.close();
    ws2.close();
  });

  it('an aborted signal fails the connection with an ErrorEvent carrying AbortedError', async () => {
    const controller = new AbortController();
    const ws = new BrowserWebSocket(`${base}/`, undefined, { signal: controller.signal });
    const all = events(ws);
    controller.abort();
    const seen = await all;
    expect(seen.map((e) => e.type)).toEqual(['error', 'close']);
    expect(seen[0]).toBeInstanceOf(ErrorEvent);
    expect(((seen[0] as ErrorEvent).error as { code: string }).code).toBe('ERR_WS_ABORTED');
  });

  it('close() without a code sends 1000', async () => {
    const ws = new BrowserWebSocket(`${base}/`);
    await opened(ws);
    const all = events(ws);
    ws.close();
    const close = (await all).at(-1) as CloseEvent;
    expect([close.code, close.wasClean]).toEqual([1000, true]);
  });
});
