import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CORK_LIMIT, tickBatcher } from '../src/transports/ws.js';

// The per-tick cork of room fan-out (src/transports/ws.ts) on a real loopback socket pair.
let server: Server | undefined;
const open: Socket[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function pair(): Promise<{ writer: Socket; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((s) => {
      open.push(s);
      s.on('data', (d) => chunks.push(d));
      resolve(s);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const writer = tcpConnect((server!.address() as { port: number }).port, '127.0.0.1');
  open.push(writer);
  await new Promise((r) => writer.once('connect', r));
  await accepted;
  return { writer, received: () => Buffer.concat(chunks) };
}

const nextTick = () => new Promise<void>((r) => process.nextTick(r));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('tick batching of shared frames', () => {
  it('writes a lone frame at once; a second frame in the same tick corks until the next tick', async () => {
    const { writer, received } = await pair();
    const batch = tickBatcher(writer);
    batch();
    writer.write('a');
    expect(writer.writableCorked).toBe(0); // a lone message is not delayed
    batch();
    writer.write('b');
    expect(writer.writableCorked).toBe(1);
    batch();
    writer.write('c');
    expect(writer.writableCorked).toBe(1); // corked once per tick, not once per frame
    expect(writer.writableLength).toBe(2); // b and c wait for the tick to end
    await nextTick();
    await nextTick();
    expect(writer.writableCorked).toBe(0);
    // Next tick: a lone frame again goes straight out.
    batch();
    writer.write('d');
    expect(writer.writableCorked).toBe(0);
    await until(() => received().length === 4);
    expect(received().toString()).toBe('abcd');
  });

  it('flushes early once the corked bytes pass CORK_LIMIT (a big batch is not a slow consumer)', async () => {
    const { writer, received } = await pair();
    const batch = tickBatcher(writer);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const count = Math.ceil((2 * CORK_LIMIT) / chunk.length) + 2;
    let maxHeld = 0;
    for (let i = 0; i < count; i++) {
      batch();
      writer.write(chunk);
      if (writer.writableCorked > 0) maxHeld = Math.max(maxHeld, writer.writableLength);
    }
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(CORK_LIMIT + chunk.length * 2);
    await until(() => received().length === count * chunk.length, 10_000);
    expect(writer.writableCorked).toBe(0);
  });

  it('does nothing without a socket of its own (an HTTP/2 stream)', () => {
    const batch = tickBatcher(undefined);
    expect(() => {
      batch();
      batch();
    }).not.toThrow();
  });
});
