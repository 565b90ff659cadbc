import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocketServer } from '../src/index.js';
import { echoServer, frame, Op, rawClient, withTimeout } from './helpers.js';

// Random bytes at a live server: it must answer or close, never crash, hang or stop serving.

let server: WebSocketServer;
let port: number;
beforeAll(async () => {
  ({ server, port } = await echoServer({
    heartbeatInterval: 0,
    maxPayload: 64 * 1024,
    closeTimeout: 500,
    perMessageDeflate: true,
  }));
});
afterAll(async () => {
  await server.close();
});

describe('socket-level fuzzing', () => {
  it('survives random frames after the handshake', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 5 }),
        async (chunks) => {
          const c = await rawClient(port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
          for (const chunk of chunks) c.socket.write(chunk);
          // Either the server failed the connection, or it is still waiting for more bytes.
          await Promise.race([c.ended, new Promise((r) => setTimeout(r, 100))]);
          c.socket.destroy();
        },
      ),
      { numRuns: 40 },
    );
    // Still serving.
    const c = await rawClient(port);
    c.write(frame({ opcode: Op.text, payload: 'alive' }));
    const [f] = await c.frames(1);
    expect(f!.payload.toString()).toBe('alive');
    c.socket.destroy();
  });

  it('answers random bytes instead of a handshake with a 4xx or a close, without crashing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 500 }), async (bytes) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        let data = '';
        let closed = false;
        // Settles once a whole status line has arrived or the server closed; never on a timer.
        const answered = new Promise<void>((resolve) => {
          s.on('data', (d: Buffer) => {
            data += d.toString('latin1');
            if (data.includes('\r\n')) resolve();
          });
          s.once('close', () => {
            closed = true;
            resolve();
          });
        });
        await new Promise((r) => s.once('connect', r));
        s.write(
          Buffer.concat([
            Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'),
            Buffer.from(bytes),
            Buffer.from('\r\n\r\n'),
          ]),
        );
        try {
          await withTimeout(answered, 5000, 'a status line or a close');
          // No handshake can succeed without a key; whatever came back is a refusal.
          expect(data).not.toMatch(/^HTTP\/1\.1 101/);
          if (!closed || data !== '') expect(data).toMatch(/^HTTP\/1\.1 4\d\d /);
        } finally {
          s.destroy();
        }
      }),
      { numRuns: 40 },
    );
    const c = await rawClient(port);
    c.socket.destroy();
  });
});
