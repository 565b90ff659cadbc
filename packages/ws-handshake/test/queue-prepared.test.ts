import { describe, expect, it } from 'vitest';
import {
  connect,
  createWebSocketServer,
  InvalidArgumentError,
  PreparedMessage,
  type WebSocket,
} from '../src/index.js';
import { rawClient, waitFor, withTimeout } from './helpers.js';

async function serverWithConns(options = {}) {
  const srv = await createWebSocketServer({ heartbeatInterval: 0, ...options });
  const conns: WebSocket[] = [];
  srv.on('connection', (ws) => conns.push(ws));
  return { srv, conns };
}

describe('queuePrepared', () => {
  it('queues one prepared frame on many connections, in order with send(); no promise', async () => {
    const { srv, conns } = await serverWithConns();
    const clients = await Promise.all([1, 2, 3].map(() => connect(`ws://127.0.0.1:${srv.port}`)));
    const got = clients.map((c) => {
      const seen: string[] = [];
      c.on('message', (d) => seen.push(String(d)));
      return seen;
    });
    await waitFor(() => conns.length === 3);
    const text = new PreparedMessage('to everyone');
    const bytes = new PreparedMessage(Buffer.from([1, 2, 3]));
    for (const ws of conns) {
      void ws.send('before');
      const r = ws.queuePrepared(text);
      expect(r).toBe(true);
      expect(ws.queuePrepared(bytes)).toBe(true);
      void ws.send('after');
    }
    await waitFor(() => got.every((g) => g.length === 4));
    for (const g of got) expect(g).toEqual(['before', 'to everyone', '\u0001\u0002\u0003', 'after']);
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  });

  it('returns false (and throws nothing) once the connection is closing or closed', async () => {
    const { srv, conns } = await serverWithConns({ closeTimeout: 200 });
    const client = await connect(`ws://127.0.0.1:${srv.port}`);
    await waitFor(() => conns.length === 1);
    const ws = conns[0]!;
    const closing = ws.close(1000, 'bye');
    expect(ws.queuePrepared(new PreparedMessage('late'))).toBe(false);
    await closing;
    expect(ws.queuePrepared(new PreparedMessage('later'))).toBe(false);
    await client.whenClosed();
    await srv.close();
  });

  it('refuses anything but a PreparedMessage with InvalidArgumentError', async () => {
    const { srv, conns } = await serverWithConns();
    const client = await connect(`ws://127.0.0.1:${srv.port}`);
    await waitFor(() => conns.length === 1);
    for (const bad of ['text', Buffer.from('x'), { frame: Buffer.alloc(2) }, null]) {
      expect(() => conns[0]!.queuePrepared(bad as unknown as PreparedMessage)).toThrow(InvalidArgumentError);
    }
    await client.close();
    await srv.close();
  });

  it('a reader that stops reading is closed as a slow consumer; queuePrepared then returns false', async () => {
    const { srv, conns } = await serverWithConns({
      maxBufferedAmount: 64 * 1024,
      slowConsumerTimeout: 200,
      closeTimeout: 200,
    });
    const stalled = await rawClient(srv.port!);
    stalled.socket.pause();
    await waitFor(() => conns.length === 1);
    const ws = conns[0]!;
    ws.on('error', () => {});
    const message = new PreparedMessage('p'.repeat(4096));
    let queued = 0;
    const start = Date.now();
    // Bounded: at most 4,000 frames (16 MiB) or 15 s.
    while (queued < 4000 && Date.now() - start < 15_000) {
      if (!ws.queuePrepared(message)) break;
      queued++;
      expect(ws.bufferedAmount).toBeLessThanOrEqual(64 * 1024 + 4096 + 4 + 127);
      if (queued % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await withTimeout(ws.whenClosed(), 10_000, 'slow consumer closed');
    expect(ws.closeCode).toBe(1008);
    expect(ws.closeError?.code).toBe('ERR_WS_SLOW_CONSUMER');
    expect(ws.queuePrepared(message)).toBe(false);
    stalled.socket.destroy();
    await srv.close();
  });
});
