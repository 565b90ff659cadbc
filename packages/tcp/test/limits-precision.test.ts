import { Buffer } from 'node:buffer';
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, json, lengthPrefixed, type Server } from '../src/index.js';

import { waitFor } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((fn) => fn()));
});

/** Sends `bytes` from a plain socket to a server with `codec`; returns decoded messages and errors. */
async function probe<T>(
  codec: Parameters<typeof createServer<T, unknown>>[0]['codec'],
  bytes: Buffer,
): Promise<{ messages: T[]; errors: { code?: string }[] }> {
  const messages: T[] = [];
  const errors: { code?: string }[] = [];
  const server: Server<T, unknown> = createServer({ codec, protocolErrors: 'continue' }, (conn) => {
    conn.on('message', (m) => messages.push(m));
  });
  server.on('connectionError', (error) => errors.push(error as { code?: string }));
  cleanup.push(() => server.close({ deadline: 0 }));
  const { port } = await server.listen({ host: '127.0.0.1' });
  const socket = netConnect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.end(bytes);
  await waitFor(() => messages.length + errors.length > 0 || socket.destroyed, 5_000, 'a frame or an error');
  await new Promise((r) => setTimeout(r, 100));
  socket.destroy();
  return { messages, errors };
}

describe('lengthPrefixed: exact lengths only', () => {
  it('refuses an 8-byte length above 2^53 - 1 instead of rounding it (probe of the review)', async () => {
    // 2^53 + 1 with lengthAdjustment -(2^53 - 1): the exact payload length is 2; as a double it
    // rounds to 2^53, which gave a 1-byte frame.
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0x200000, 0);
    header.writeUInt32BE(1, 4);
    const { messages, errors } = await probe(
      lengthPrefixed({
        lengthFieldLength: 8,
        lengthAdjustment: -(2 ** 53 - 1),
        maxFrameLength: Number.MAX_SAFE_INTEGER,
      }),
      Buffer.concat([header, Buffer.from('ab')]),
    );
    expect(messages).toEqual([]);
    expect(errors.map((e) => e.code)).toContain('ERR_FRAME_TOO_LARGE');
  });

  it('bounds lengthAdjustment by maxFrameLength', () => {
    expect(() => lengthPrefixed({ lengthAdjustment: -(2 ** 40), maxFrameLength: 1024 })).toThrow(
      /lengthAdjustment/,
    );
    expect(() => lengthPrefixed({ lengthAdjustment: 2000, maxFrameLength: 1024 })).toThrow(
      /lengthAdjustment/,
    );
    expect(() => lengthPrefixed({ lengthAdjustment: -1024, maxFrameLength: 1024 })).not.toThrow();
  });
});

describe('json: depth limit', () => {
  it('refuses a line nested deeper than maxDepth and keeps decoding the next one', async () => {
    const deep = `${'['.repeat(32_000)}${']'.repeat(32_000)}\n`;
    const { messages, errors } = await probe(
      json({ maxDepth: 64, maxLineLength: 128 * 1024 }),
      Buffer.from(`${deep}{"ok":"[[[[\\"]]"}\n[[1]]\n`),
    );
    expect(errors.map((e) => e.code)).toEqual(['ERR_INVALID_FRAME']);
    expect(messages).toEqual([{ ok: '[[[["]]' }, [[1]]]);
  });

  it('accepts exactly maxDepth levels', async () => {
    const { messages, errors } = await probe(json({ maxDepth: 3 }), Buffer.from('[{"a":[1]}]\n[[[[1]]]]\n'));
    expect(messages).toEqual([[{ a: [1] }]]);
    expect(errors).toHaveLength(1);
  });
});

describe('jsonDepthExceeds (property)', () => {
  const depthOf = (value: unknown): number =>
    value !== null && typeof value === 'object'
      ? 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(depthOf))
      : 0;

  it('agrees with the nesting of any JSON value, brackets inside strings included', async () => {
    const fc = (await import('fast-check')).default;
    const { jsonDepthExceeds } = await import('../src/json.js');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 10 }), (value, limit) => {
        expect(jsonDepthExceeds(JSON.stringify(value), limit)).toBe(depthOf(value) > limit);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1000) },
    );
  });
});
