import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { connect, createServer, InvalidFrameError, JsonLinesCodec, json, type Server } from '../src/index.js';
import { chunked, concatEncoded, cutsArb, drive } from './helpers.js';

const servers: Server<any, any>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
});

describe('newline-delimited JSON codec', () => {
  itFuzz('round-trips arbitrary JSON values across arbitrary chunk splits', async () => {
    await fuzz(
      'tcp-json-1',
      fc.property(fc.array(fc.jsonValue(), { maxLength: 10 }), cutsArb, (values, cuts) => {
        const codec = new JsonLinesCodec();
        const wire = concatEncoded(values.map((v) => codec.encode(v)));
        const { frames, errors } = drive(new JsonLinesCodec(), chunked(wire, cuts));
        expect(errors).toEqual([]);
        expect(frames).toEqual(values.map((v) => JSON.parse(JSON.stringify(v))));
      }),
      { numRuns: 200 },
    );
  });

  it('skips a line that is not JSON with a recoverable error and keeps the following ones', () => {
    const { frames, errors } = drive(new JsonLinesCodec(), [Buffer.from('{"a":1}\nnot json\n[2]\n')]);
    expect(frames).toEqual([{ a: 1 }, [2]]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(InvalidFrameError);
    expect(errors[0]!.recoverable).toBe(true);
  });

  it('refuses to encode values JSON cannot represent', () => {
    const codec = new JsonLinesCodec();
    expect(() => codec.encode(undefined)).toThrow(InvalidFrameError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => codec.encode(cyclic)).toThrow(InvalidFrameError);
  });

  it('carries structured messages between a server and a client', async () => {
    const server = createServer({ codec: json() }, (conn) => {
      conn.on('message', (msg) => conn.write({ echo: msg, from: 'server' }));
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: json() });
    await client.send({ text: 'line\nbreak', n: 1 });
    const { value } = await client[Symbol.asyncIterator]().next();
    expect(value).toEqual({ echo: { text: 'line\nbreak', n: 1 }, from: 'server' });
    client.destroy();
  });
});
