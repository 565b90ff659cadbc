import { describe, expect, it } from 'vitest';
import { createWebSocketServer, type WebSocket } from '../src/index.js';
import { frame, Op, type RawClient, rawClient, waitFor, withTimeout } from './helpers.js';

/*
 * Abuse over real loopback sockets: a raw client completes the handshake, stops reading, and
 * floods. The server must stop reading too (so it cannot be made to queue replies without
 * bound), keep its queue under `maxBufferedAmount` plus one frame, and close the connection
 * with 1008 once the limit has stayed exceeded for `slowConsumerTimeout`.
 */

const LIMIT = 64 * 1024;
const SLOW_TIMEOUT = 300;
const CLOSE_TIMEOUT = 300;
// A server frame carries at most a 125-byte control payload or a small echo: 2-byte header.
const MAX_CONTROL_FRAME = 2 + 125;

interface Flood {
  sent: number;
  /** Highest bufferedAmount seen, sampled after every reply and on a 1 ms timer. */
  peak: number;
  /** When bufferedAmount was first seen above the limit, and when the slow-consumer error came. */
  overAt: number;
  errorAt: number;
}

/** Write `batch` until the server closes, `maxFrames` are written, or `maxMs` pass. */
async function flood(
  client: RawClient,
  batch: Buffer,
  perBatch: number,
  maxFrames: number,
  maxMs: number,
  stop: () => boolean,
): Promise<number> {
  const start = Date.now();
  let sent = 0;
  while (sent < maxFrames && Date.now() - start < maxMs && !stop() && !client.socket.destroyed) {
    const ok = client.socket.write(batch);
    sent += perBatch;
    if (!ok) {
      // Our own send buffer is full (the server stopped reading): wait a little, bounded.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        client.socket.once('drain', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  return sent;
}

async function floodServer(
  onConnection: (ws: WebSocket, sample: () => void) => void,
  batch: Buffer,
  perBatch: number,
): Promise<{ ws: WebSocket; result: Flood; closedWithin: number }> {
  const srv = await createWebSocketServer({
    heartbeatInterval: 0,
    maxBufferedAmount: LIMIT,
    slowConsumerTimeout: SLOW_TIMEOUT,
    closeTimeout: CLOSE_TIMEOUT,
  });
  const result: Flood = { sent: 0, peak: 0, overAt: 0, errorAt: 0 };
  const conn = new Promise<WebSocket>((resolve) => srv.once('connection', resolve));
  const client = await rawClient(srv.port!);
  client.socket.pause(); // never read
  const ws = await conn;
  const sample = (): void => {
    const amount = ws.bufferedAmount;
    if (amount > result.peak) result.peak = amount;
    if (amount > LIMIT && result.overAt === 0) result.overAt = Date.now();
  };
  onConnection(ws, sample);
  ws.on('error', (error) => {
    if (error.code === 'ERR_WS_SLOW_CONSUMER' && result.errorAt === 0) result.errorAt = Date.now();
  });
  const timer = setInterval(sample, 1);
  let closedAt = 0;
  ws.once('close', () => {
    closedAt = Date.now();
  });
  const start = Date.now();
  try {
    // 40 MiB at most: far more than loopback socket buffers hold, bounded in time.
    result.sent = await flood(client, batch, perBatch, 300_000, 20_000, () => closedAt !== 0);
    await withTimeout(ws.whenClosed(), 15_000, 'server closed the flooding connection');
  } finally {
    clearInterval(timer);
    client.socket.destroy();
    await srv.close();
  }
  return { ws, result, closedWithin: closedAt - start };
}

describe('flood without reading', () => {
  it('a ping flood cannot grow the queue past maxBufferedAmount; the peer is closed with 1008', async () => {
    const ping = frame({ opcode: Op.ping, payload: Buffer.alloc(125, 7) });
    const batch = Buffer.concat(Array.from({ length: 500 }, () => ping));
    const { ws, result, closedWithin } = await floodServer((w, sample) => w.on('ping', sample), batch, 500);
    // Enough was sent to fill every socket buffer on the way many times over.
    expect(result.sent).toBeGreaterThan(20_000);
    expect(result.peak).toBeGreaterThan(0);
    // The reply that crossed the limit, plus our close frame.
    expect(result.peak).toBeLessThanOrEqual(LIMIT + 2 * MAX_CONTROL_FRAME);
    expect(ws.closeCode).toBe(1008);
    expect(ws.closeError?.code).toBe('ERR_WS_SLOW_CONSUMER');
    // Over the limit for slowConsumerTimeout, then closeTimeout for the unanswered close frame.
    expect(closedWithin).toBeLessThan(15_000);
    // The verdict waits for the limit to stay exceeded for slowConsumerTimeout (timer slack aside).
    expect(result.overAt).toBeGreaterThan(0);
    expect(result.errorAt - result.overAt).toBeGreaterThanOrEqual(SLOW_TIMEOUT - 20);
  }, 40_000);

  it('an echo flood of small messages cannot grow the queue past maxBufferedAmount', async () => {
    const msg = frame({ opcode: Op.text, payload: 'x'.repeat(100) });
    const batch = Buffer.concat(Array.from({ length: 500 }, () => msg));
    let echoed = 0;
    const { ws, result, closedWithin } = await floodServer(
      (w, sample) =>
        w.on('message', (data) => {
          w.send(data).catch(() => {});
          echoed++;
          sample();
        }),
      batch,
      500,
    );
    expect(result.sent).toBeGreaterThan(20_000);
    expect(echoed).toBeGreaterThan(0);
    expect(result.peak).toBeLessThanOrEqual(LIMIT + (2 + 100) + MAX_CONTROL_FRAME);
    expect(ws.closeCode).toBe(1008);
    expect(ws.closeError?.code).toBe('ERR_WS_SLOW_CONSUMER');
    expect(closedWithin).toBeLessThan(15_000);
    // The verdict waits for the limit to stay exceeded for slowConsumerTimeout (timer slack aside).
    expect(result.overAt).toBeGreaterThan(0);
    expect(result.errorAt - result.overAt).toBeGreaterThanOrEqual(SLOW_TIMEOUT - 20);
  }, 40_000);
});

describe('read-side backpressure', () => {
  it('pauses reading while over the limit and resumes once the peer drains', async () => {
    const srv = await createWebSocketServer({
      heartbeatInterval: 0,
      maxBufferedAmount: LIMIT,
      slowConsumerTimeout: 20_000,
    });
    const conn = new Promise<WebSocket>((resolve) => srv.once('connection', resolve));
    const client = await rawClient(srv.port!);
    client.socket.pause();
    const ws = await conn;
    let echoed = 0;
    ws.on('message', (data) => {
      echoed++;
      ws.send(data).catch(() => {});
    });
    const payload = 'y'.repeat(1000);
    const msg = frame({ opcode: Op.text, payload });
    const total = 20_000; // ~20 MB of echoes: more than the kernel buffers hold
    const batch = Buffer.concat(Array.from({ length: 100 }, () => msg));
    const writing = (async () => {
      for (let i = 0; i < total / 100 && !client.socket.destroyed; i++) {
        if (!client.socket.write(batch)) {
          await new Promise<void>((resolve) => client.socket.once('drain', resolve));
        }
      }
    })();
    // The server stops echoing (it stopped reading) well before all messages are processed.
    await waitFor(() => echoed > 0, 10_000, 'first echoes');
    let stalled = -1;
    for (let i = 0; i < 40; i++) {
      const before = echoed;
      await new Promise((r) => setTimeout(r, 50));
      if (echoed === before && ws.bufferedAmount > 0) {
        stalled = echoed;
        break;
      }
    }
    expect(stalled).toBeGreaterThan(0);
    expect(stalled).toBeLessThan(total);
    expect(ws.readyState).toBe(1);
    expect(ws.bufferedAmount).toBeLessThanOrEqual(LIMIT + 2 + 1000 + 2);
    // Now read: the server drains, resumes reading and echoes everything.
    client.socket.resume();
    await withTimeout(writing, 30_000, 'all written');
    await waitFor(() => echoed === total, 30_000, 'every message echoed');
    expect(ws.readyState).toBe(1);
    expect(ws.closeError).toBeUndefined();
    client.socket.destroy();
    await srv.close();
  }, 60_000);
});

describe('liveness', () => {
  it('terminates a peer that keeps sending data but never answers the heartbeat ping', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 150 });
    const conn = new Promise<WebSocket>((resolve) => srv.once('connection', resolve));
    const client = await rawClient(srv.port!);
    const ws = await conn;
    let messages = 0;
    ws.on('message', () => messages++);
    const chatter = setInterval(() => {
      if (!client.socket.destroyed) client.write(frame({ opcode: Op.text, payload: 'still here' }));
    }, 20);
    try {
      await withTimeout(ws.whenClosed(), 10_000, 'heartbeat termination');
    } finally {
      clearInterval(chatter);
    }
    expect(messages).toBeGreaterThan(3);
    expect(ws.closeError?.code).toBe('ERR_WS_HEARTBEAT_TIMEOUT');
    client.socket.destroy();
    await srv.close();
  });

  it('keeps a peer that answers the heartbeat ping with its payload', async () => {
    const srv = await createWebSocketServer({ heartbeatInterval: 150 });
    const conn = new Promise<WebSocket>((resolve) => srv.once('connection', resolve));
    const client = await rawClient(srv.port!);
    const ws = await conn;
    let answered = 0;
    client.socket.on('data', () => {
      for (const f of client.reader.frames.splice(0)) {
        if (f.opcode === Op.ping) {
          client.write(frame({ opcode: Op.pong, payload: f.payload }));
          answered++;
        }
      }
    });
    await waitFor(() => answered >= 5, 10_000, 'five heartbeats answered');
    expect(ws.readyState).toBe(1);
    client.socket.destroy();
    await srv.close();
  });
});
