import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import {
  acceptDeflateOffer,
  deflateOffer,
  parseExtensions,
  verifyDeflateResponse,
} from '../src/extension.js';
import type { PerMessageDeflateOptions } from '../src/options.js';
import { inflatedBytes, PerMessageDeflate } from '../src/permessage-deflate.js';
import { INFLATE_CHUNK, zipBomb } from './helpers.js';

const bits = fc.option(fc.integer({ min: 8, max: 15 }), { nil: undefined });
const deflateOptions = fc.record({
  serverNoContextTakeover: fc.boolean(),
  clientNoContextTakeover: fc.boolean(),
  serverMaxWindowBits: bits,
  clientMaxWindowBits: bits,
});

function clean(o: PerMessageDeflateOptions): PerMessageDeflateOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

describe('permessage-deflate negotiation', () => {
  itFuzz(
    'a server always answers a client offer with a response the client accepts, within both limits',
    async () => {
      await fuzz(
        'ws-deflate-1',
        fc.property(deflateOptions, deflateOptions, (c, s) => {
          const client = clean(c);
          const server = clean(s);
          const offers = parseExtensions(deflateOffer(client))!;
          const accepted = acceptDeflateOffer(offers, server);
          expect(accepted).not.toBeNull();
          const response = parseExtensions(accepted!.response)!;
          expect(response).toHaveLength(1);
          const agreed = verifyDeflateResponse(response[0]!, client);
          expect(typeof agreed).toBe('object');
          if (typeof agreed === 'string') return;
          // Both sides compute the same parameters.
          expect(agreed.serverNoContextTakeover).toBe(accepted!.params.serverNoContextTakeover);
          expect(agreed.serverMaxWindowBits).toBe(accepted!.params.serverMaxWindowBits);
          if (client.serverNoContextTakeover) expect(agreed.serverNoContextTakeover).toBe(true);
          if (client.serverMaxWindowBits !== undefined) {
            expect(agreed.serverMaxWindowBits).toBeLessThanOrEqual(client.serverMaxWindowBits);
          }
          if (server.serverMaxWindowBits !== undefined) {
            expect(agreed.serverMaxWindowBits).toBeLessThanOrEqual(server.serverMaxWindowBits);
          }
          if (client.clientMaxWindowBits !== undefined) {
            expect(agreed.clientMaxWindowBits).toBeLessThanOrEqual(client.clientMaxWindowBits);
          }
        }),
        { numRuns: 300 },
      );
    },
  );
});

function compress(d: PerMessageDeflate, data: Buffer, fin: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => d.compress(data, fin, (e, out) => (e ? reject(e) : resolve(out!))));
}
function decompress(d: PerMessageDeflate, data: Buffer, fin: boolean, limit = 1 << 24): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    d.decompress(data, fin, limit, (e, out) => (e ? reject(e) : resolve(out ?? Buffer.alloc(0)))),
  );
}

describe('permessage-deflate codec', () => {
  itFuzz('round-trips message sequences, fragmented or whole, under any negotiated params', async () => {
    await fuzz(
      'ws-deflate-2',
      fc.asyncProperty(
        fc.record({
          serverNoContextTakeover: fc.boolean(),
          clientNoContextTakeover: fc.boolean(),
          serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
          clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
        }),
        fc.array(
          fc.tuple(
            fc.oneof(
              fc.uint8Array({ maxLength: 3000 }),
              fc.string({ maxLength: 2000 }).map((s) => new TextEncoder().encode(s.repeat(3))),
            ),
            fc.integer({ min: 1, max: 3 }),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (params, messages) => {
          const server = new PerMessageDeflate(params, true, 1 << 24);
          const client = new PerMessageDeflate(params, false, 1 << 24);
          try {
            for (const [bytes, parts] of messages) {
              const data = Buffer.from(bytes);
              const step = Math.ceil(data.length / parts) || 1;
              const out: Buffer[] = [];
              for (let off = 0, i = 0; i < parts; i++, off += step) {
                const fin = i === parts - 1;
                const wire = await compress(server, data.subarray(off, fin ? data.length : off + step), fin);
                out.push(await decompress(client, wire, fin));
              }
              expect(Buffer.concat(out).equals(data)).toBe(true);
            }
          } finally {
            server.close();
            client.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('stops inflating at the limit with ERR_WS_MESSAGE_TOO_BIG', async () => {
    const params = {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const client = new PerMessageDeflate(params, false, 1000);
    // 1 GiB of zeros in ~1 MiB: zlib must be stopped within one output chunk of the limit.
    const before = inflatedBytes.total;
    await expect(decompress(client, zipBomb(1024), true, 1000)).rejects.toMatchObject({
      code: 'ERR_WS_MESSAGE_TOO_BIG',
      closeCode: 1009,
    });
    const inflated = inflatedBytes.total - before;
    expect(inflated).toBeGreaterThan(1000);
    expect(inflated).toBeLessThanOrEqual(1000 + INFLATE_CHUNK);
    client.close();
  });
});

describe('zlib concurrency cap', () => {
  it('queues beyond 10 concurrent jobs and completes every one in order per connection', async () => {
    const params = {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const pairs = Array.from(
      { length: 50 },
      () =>
        [
          new PerMessageDeflate(params, true, 1 << 20),
          new PerMessageDeflate(params, false, 1 << 20),
        ] as const,
    );
    const results = await Promise.all(
      pairs.map(async ([server, client], i) => {
        const msgs = [`first ${i} `.repeat(100), `second ${i} `.repeat(100)];
        // One operation per direction at a time per codec (as a connection does), all codecs at once.
        const out: string[] = [];
        for (const m of msgs)
          out.push((await decompress(client, await compress(server, Buffer.from(m), true), true)).toString());
        return out.join('|') === msgs.join('|');
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    // A closed codec with a queued job gives its slot back: later jobs still run.
    const [s0] = pairs[0]!;
    const jobs = pairs.slice(1, 20).map(([s]) => compress(s, Buffer.from('x'), true));
    s0.close();
    await Promise.all(jobs);
    for (const [s, c] of pairs) {
      s.close();
      c.close();
    }
  });
});
