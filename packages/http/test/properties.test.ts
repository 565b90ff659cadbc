import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { createServer, type Server } from '../src/index.js';
import { parseAuthority } from '../src/server.js';
import { raw, statusOf } from './helpers.js';

describe('CONNECT target parsing', () => {
  itFuzz('round-trips host:port and [v6]:port', async () => {
    const host = fc.oneof(
      fc.domain(),
      fc.ipV4(),
      fc.ipV6().map((v6) => `[${v6}]`),
    );
    await fuzz(
      'http-properties-1',
      fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
        const parsed = parseAuthority(`${h}:${port}`);
        expect(parsed).not.toBeNull();
        expect(parsed!.port).toBe(port);
        expect(parsed!.host).toBe(h.startsWith('[') ? h.slice(1, -1) : h.toLowerCase());
      }),
      { numRuns: 300 },
    );
  });

  itFuzz('never throws and never yields an out-of-range port on arbitrary input', async () => {
    await fuzz(
      'http-properties-2',
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const parsed = parseAuthority(s);
        if (parsed !== null) {
          expect(parsed.port).toBeGreaterThanOrEqual(1);
          expect(parsed.port).toBeLessThanOrEqual(65535);
          expect(parsed.host).not.toMatch(/[\s/@]/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('request bodies over a live socket', () => {
  let app: Server;
  let port: number;
  const LIMIT = 1500;

  beforeAll(async () => {
    app = createServer({ bodyLimit: LIMIT });
    app.post('/echo', async (ctx) => ({ value: await ctx.json() }));
    app.post('/count', async (ctx) => (await ctx.buffer()).length);
    ({ port } = await app.listen(0, '127.0.0.1'));
  });

  afterAll(() => app.close({ deadline: 1000 }));

  /** Splits `data` at the given cut points (any boundaries, including inside UTF-8 sequences). */
  function split(data: Buffer, cuts: number[]): Buffer[] {
    const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
    const parts: Buffer[] = [];
    let last = 0;
    for (const p of points) {
      if (p > last) parts.push(data.subarray(last, p));
      last = p;
    }
    if (last < data.length) parts.push(data.subarray(last));
    return parts;
  }

  itFuzz('parses JSON identically whatever the chunk boundaries and framing', async () => {
    await fuzz(
      'http-properties-3',
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: 3 }).filter((v) => JSON.stringify(v).length < 1000),
        fc.array(fc.nat(2000), { maxLength: 8 }),
        fc.boolean(),
        async (value, cuts, chunked) => {
          const body = Buffer.from(JSON.stringify(value));
          const parts = split(body, cuts);
          const head = chunked
            ? 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
            : `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
          const chunks: (string | Buffer | number)[] = [head];
          for (const part of parts) {
            chunks.push(
              chunked
                ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')])
                : part,
              1,
            );
          }
          if (chunked) chunks.push('0\r\n\r\n');
          const r = await raw(port, chunks);
          expect(statusOf(r.data)).toBe(200);
          const json = Buffer.from(r.data.slice(r.data.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8');
          expect(JSON.parse(json)).toEqual({ value: JSON.parse(JSON.stringify(value)) });
        },
      ),
      { numRuns: 40 },
    );
  });

  itFuzz('accepts a body exactly when it fits the limit', async () => {
    await fuzz(
      'http-properties-4',
      fc.asyncProperty(fc.integer({ min: 0, max: 2 * LIMIT }), fc.boolean(), async (size, chunked) => {
        const body = 'z'.repeat(size);
        const head = chunked
          ? 'POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
          : `POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`;
        const payload = chunked ? `${size > 0 ? `${size.toString(16)}\r\n${body}\r\n` : ''}0\r\n\r\n` : body;
        const r = await raw(port, [head, payload]);
        expect(statusOf(r.data)).toBe(size <= LIMIT ? 200 : 413);
        if (size <= LIMIT) expect(r.data.endsWith(`\r\n\r\n${size}`)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});
