import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../src/errors.js';
import { Frame } from '../src/frame.js';
import { connect, createServer, LengthPrefixedCodec, lengthPrefixed, type Server } from '../src/index.js';
import type { LengthPrefixedOptions } from '../src/options.js';
import { chunked, concatEncoded, cutsArb, drive, within } from './helpers.js';

const optionsArb: fc.Arbitrary<LengthPrefixedOptions> = fc.record(
  {
    lengthFieldLength: fc.constantFrom<1 | 2 | 4 | 8 | 'varint'>(1, 2, 4, 8, 'varint'),
    byteOrder: fc.constantFrom<'big' | 'little'>('big', 'little'),
    lengthFieldOffset: fc.integer({ min: 0, max: 3 }),
    lengthAdjustment: fc.integer({ min: -6, max: 6 }),
    initialBytesToStrip: fc.integer({ min: 0, max: 4 }),
  },
  { requiredKeys: ['lengthFieldLength'] },
);

/** Each chunk in its own ArrayBuffer, like separate socket reads, so aliasing is observable. */
function ownMemory(chunks: Buffer[]): Buffer[] {
  return chunks.map((c) => {
    const copy = new Uint8Array(c.length);
    copy.set(c);
    return Buffer.from(copy.buffer);
  });
}

/** Every segment lies inside one of the input chunks (same memory, not a copy). */
function isViewOfSomeChunk(segment: Buffer, chunks: Buffer[]): boolean {
  return chunks.some(
    (c) =>
      segment.buffer === c.buffer &&
      segment.byteOffset >= c.byteOffset &&
      segment.byteOffset + segment.length <= c.byteOffset + c.length,
  );
}

describe("lengthPrefixed({ frames: 'segments' })", () => {
  it('decodes exactly what the contiguous mode decodes, for any options, payloads and chunking, never copying', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
        cutsArb,
        (options, payloads, cuts) => {
          const adjust = options.lengthAdjustment ?? 0;
          const valid = payloads.map((p) => (p.length >= adjust ? p : new Uint8Array(adjust)));
          const encoder = new LengthPrefixedCodec(options);
          const encoded = valid.map((p) => concatEncoded([encoder.encode(p)]));
          const strip = options.initialBytesToStrip;
          fc.pre(strip === undefined || encoded.every((f) => f.length >= strip));
          const chunks = ownMemory(chunked(Buffer.concat(encoded), cuts));

          const contiguous = drive(new LengthPrefixedCodec(options), chunks);
          const segmentedCodec = new LengthPrefixedCodec<Frame>({ ...options, frames: 'segments' });
          const segmented = drive(segmentedCodec, chunks);

          expect(segmented.errors).toEqual([]);
          expect(contiguous.errors).toEqual([]);
          expect(segmentedCodec.bufferedBytes).toBe(0);
          expect(segmented.frames.map((f) => f.toBuffer().toString('hex'))).toEqual(
            contiguous.frames.map((f) => f.toString('hex')),
          );
          for (const frame of segmented.frames) {
            expect(frame).toBeInstanceOf(Frame);
            expect(frame.segments.reduce((n, s) => n + s.length, 0)).toBe(frame.length);
            for (const segment of frame.segments) {
              expect(segment.length).toBeGreaterThan(0);
              expect(isViewOfSomeChunk(segment, chunks)).toBe(true);
            }
            expect(Buffer.concat([...frame]).equals(frame.toBuffer())).toBe(true);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('hands out a frame straddling two reads as two views of those reads', () => {
    const payload = Buffer.alloc(65_536);
    for (let i = 0; i < payload.length; i++) payload[i] = i * 7;
    const wire = concatEncoded([new LengthPrefixedCodec().encode(payload)]);
    // Two 64 KiB reads, like the socket delivers: the 65,540-byte frame spans both.
    const [first, second] = ownMemory([wire.subarray(0, 65_536), wire.subarray(65_536)]);
    const codec = new LengthPrefixedCodec<Frame>({ frames: 'segments' });
    const out: Frame[] = [];
    codec.decode(first!, out);
    expect(out).toEqual([]);
    codec.decode(second!, out);
    expect(out).toHaveLength(1);
    const frame = out[0]!;
    expect(frame.length).toBe(65_536);
    expect(frame.segments).toHaveLength(2);
    expect(frame.segments[0]!.buffer).toBe(first!.buffer);
    expect(frame.segments[0]!.byteOffset).toBe(first!.byteOffset + 4);
    expect(frame.segments[1]!.buffer).toBe(second!.buffer);
    expect(frame.toBuffer().equals(payload)).toBe(true);
    expect(frame.toBuffer()).toBe(frame.toBuffer()); // joined once, then cached
  });

  it('applies maxFrameLength the same way: the header alone is refused, nothing buffered', () => {
    const codec = new LengthPrefixedCodec<Frame>({ frames: 'segments', maxFrameLength: 1024 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1 << 30);
    expect(() => codec.decode(header, [])).toThrow(FrameTooLargeError);

    fc.assert(
      fc.property(
        optionsArb,
        fc.integer({ min: 6, max: 400 }),
        fc.uint8Array({ maxLength: 2000 }),
        cutsArb,
        (options, maxFrameLength, bytes, cuts) => {
          const chunks = chunked(Buffer.from(bytes), cuts);
          const a = drive(new LengthPrefixedCodec({ ...options, maxFrameLength }), chunks);
          const b = drive(
            new LengthPrefixedCodec<Frame>({ ...options, maxFrameLength, frames: 'segments' }),
            chunks,
          );
          expect(b.errors.map((e) => e.code)).toEqual(a.errors.map((e) => e.code));
          expect(b.maxBuffered).toBe(a.maxBuffered);
          expect(b.frames.map((f) => f.toBuffer().toString('hex'))).toEqual(
            a.frames.map((f) => f.toString('hex')),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodes a Frame by reference (header + its segments) and identically to its bytes', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 4 }),
        (options, parts) => {
          const codec = new LengthPrefixedCodec(options);
          const frame = new Frame(parts);
          const bytes = Buffer.concat(parts);
          let expected: Buffer;
          try {
            expected = concatEncoded([codec.encode(bytes)]);
          } catch (error) {
            expect(() => codec.encode(frame)).toThrow((error as Error).constructor as new () => Error);
            return;
          }
          const encoded = codec.encode(frame);
          expect(concatEncoded([encoded])).toEqual(expected);
          if (bytes.length > 0) {
            // The payload parts are the frame's segments themselves, not copies.
            expect(Array.isArray(encoded)).toBe(true);
            const list = encoded as readonly Uint8Array[];
            expect(list.slice(1)).toEqual(frame.segments);
            for (let i = 0; i < frame.segments.length; i++) expect(list[i + 1]).toBe(frame.segments[i]);
          }
          const target = Buffer.alloc(4096);
          const written = codec.encodeInto(frame, target, 3);
          if (written >= 0) expect(target.subarray(3, 3 + written)).toEqual(expected);
          else expect(frame.length).toBeGreaterThanOrEqual(2048);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to encode something that is neither bytes, a string nor a Frame', () => {
    const codec = new LengthPrefixedCodec();
    const bogus = { segments: [Buffer.from('x')], length: 1 } as unknown as Frame;
    expect(() => codec.encode(bogus)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FRAME' }));
    expect(() => codec.encodeInto(bogus, Buffer.alloc(64), 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_FRAME' }),
    );
  });

  it('rejects an unknown frames option', () => {
    expect(() => lengthPrefixed({ frames: 'chunks' as 'segments' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });
});

describe('zero-copy echo over loopback', () => {
  const servers: Server<unknown, never>[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
  });

  it('forwards 64 KiB frames received as segments with send(frame), bytes intact and in order', async () => {
    const forwarded: Frame[] = [];
    const server = createServer({ codec: lengthPrefixed({ frames: 'segments' }) }, (conn) => {
      conn.on('message', (frame) => {
        forwarded.push(frame);
        void conn.send(frame);
      });
    });
    servers.push(server as unknown as Server<unknown, never>);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed({ frames: 'segments' }) });
    const count = 64;
    const sent = Array.from({ length: count }, (_, i) => {
      const b = Buffer.allocUnsafe(65_536);
      for (let k = 0; k < b.length; k += 4) b.writeUInt32BE((i * 65_536 + k) >>> 0, k);
      return b;
    });
    const received: Buffer[] = [];
    const done = within(
      (async () => {
        for await (const frame of client) {
          received.push(frame.toBuffer());
          if (received.length === count) break;
        }
      })(),
      30_000,
      'echoed frames',
    );
    for (const b of sent) await client.send(b);
    await done;
    expect(received.map((b) => b.length)).toEqual(sent.map((b) => b.length));
    for (let i = 0; i < count; i++) expect(received[i]!.equals(sent[i]!)).toBe(true);
    // At least one frame straddled socket reads on the server (otherwise this test proves little).
    expect(forwarded.some((f) => f.segments.length > 1)).toBe(true);
    await client.end();
  });

  it('sendRaw(frame) writes the segments as they are', async () => {
    const server = createServer({ codec: lengthPrefixed() }, (conn) => {
      conn.on('message', (m) => void conn.send(m));
    });
    servers.push(server as unknown as Server<unknown, never>);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });
    const header = Buffer.from([0, 0, 0, 5]);
    await client.sendRaw(
      new Frame([header.subarray(0, 2), header.subarray(2), Buffer.from('hel'), Buffer.from('lo')]),
    );
    const iterator = client[Symbol.asyncIterator]();
    const first = await within(iterator.next(), 10_000, 'echo');
    expect(first.value?.toString()).toBe('hello');
    await client.end();
  });
});
