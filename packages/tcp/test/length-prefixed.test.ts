import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { FrameTooLargeError, InvalidFrameError, TruncatedFrameError } from '../src/errors.js';
import { LengthPrefixedCodec, lengthPrefixed } from '../src/length-prefixed.js';
import type { LengthPrefixedOptions } from '../src/options.js';
import { bytewise, chunked, concatEncoded, cutsArb, drive, splitAt } from './helpers.js';

const fieldArb = fc.constantFrom<1 | 2 | 4 | 8 | 'varint'>(1, 2, 4, 8, 'varint');

const optionsArb: fc.Arbitrary<LengthPrefixedOptions> = fc.record(
  {
    lengthFieldLength: fieldArb,
    byteOrder: fc.constantFrom<'big' | 'little'>('big', 'little'),
    lengthFieldOffset: fc.integer({ min: 0, max: 3 }),
    lengthAdjustment: fc.integer({ min: -6, max: 6 }),
    initialBytesToStrip: fc.integer({ min: 0, max: 4 }),
  },
  { requiredKeys: ['lengthFieldLength'] },
);

describe('length-prefixed codec', () => {
  itFuzz(
    'round-trips random frame lists for every option combination and chunking, down to 1-byte chunks',
    async () => {
      await fuzz(
        'tcp-length-prefixed-1',
        fc.property(
          optionsArb,
          fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
          cutsArb,
          (options, payloads, cuts) => {
            const adjust = options.lengthAdjustment ?? 0;
            // A positive adjustment means the length field under-counts, so payloads need at least that many bytes.
            const valid = payloads.map((p) => (p.length >= adjust ? p : new Uint8Array(adjust)));
            const encoder = new LengthPrefixedCodec(options);
            const encoded = valid.map((p) => concatEncoded([encoder.encode(p)]));
            // Expected: each whole encoded frame minus the stripped prefix.
            const expected = encoded.map((frame, i) => {
              const header = frame.length - valid[i]!.length;
              return frame.subarray(options.initialBytesToStrip ?? header);
            });
            const strip = options.initialBytesToStrip;
            fc.pre(strip === undefined || encoded.every((f) => f.length >= strip));
            const decoder = new LengthPrefixedCodec(options);
            const { frames, errors } = drive(decoder, chunked(Buffer.concat(encoded), cuts));
            expect(errors).toEqual([]);
            expect(frames.map((f) => f.toString('hex'))).toEqual(expected.map((f) => f.toString('hex')));
            expect(decoder.bufferedBytes).toBe(0);
          },
        ),
        { numRuns: 400 },
      );
    },
  );

  itFuzz('encodeInto writes exactly the bytes encode returns, or reports that it does not fit', async () => {
    await fuzz(
      'tcp-length-prefixed-2',
      fc.property(
        optionsArb,
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          fc.string({ maxLength: 40 }),
          fc.constant(new Uint8Array(3000)),
        ),
        fc.integer({ min: 0, max: 130 }),
        (options, message, room) => {
          const field =
            options.lengthFieldLength === 1 && message.length > 200 ? 2 : options.lengthFieldLength;
          const codec = new LengthPrefixedCodec({
            ...options,
            lengthFieldLength: field,
            lengthAdjustment: Math.min(0, options.lengthAdjustment ?? 0),
          });
          const expected = concatEncoded([codec.encode(message)]);
          const target = Buffer.alloc(3 + room, 0xee);
          const written = codec.encodeInto(message, target, 3);
          if (expected.length > room || (typeof message !== 'string' && message.length >= 2048)) {
            expect(written).toBe(-1);
          } else {
            expect(target.subarray(3, 3 + written).toString('hex')).toBe(expected.toString('hex'));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  itFuzz('decodes default frames back to exactly the payloads sent (strings and bytes)', async () => {
    await fuzz(
      'tcp-length-prefixed-3',
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 50 }), { maxLength: 10 }),
        cutsArb,
        (texts, cuts) => {
          const codec = lengthPrefixed()();
          const wire = concatEncoded(texts.map((t) => codec.encode(t)));
          const { frames, errors } = drive(lengthPrefixed()(), chunked(wire, cuts));
          expect(errors).toEqual([]);
          expect(frames.map((f) => f.toString('utf8'))).toEqual(texts);
        },
      ),
      { numRuns: 200 },
    );
  });

  itFuzz('never crashes, hangs or buffers beyond maxFrameLength on random bytes', async () => {
    await fuzz(
      'tcp-length-prefixed-4',
      fc.property(
        optionsArb,
        fc.integer({ min: 6, max: 400 }), // |lengthAdjustment| <= maxFrameLength
        fc.uint8Array({ maxLength: 2000 }),
        cutsArb,
        (options, maxFrameLength, bytes, cuts) => {
          const codec = new LengthPrefixedCodec({ ...options, maxFrameLength });
          const { errors, maxBuffered } = drive(codec, chunked(Buffer.from(bytes), cuts));
          // Only a partial header may exceed the frame limit (offset + up to 10 varint bytes).
          expect(maxBuffered).toBeLessThanOrEqual(
            Math.max(maxFrameLength, (options.lengthFieldOffset ?? 0) + 10),
          );
          for (const e of errors) {
            expect(['ERR_FRAME_TOO_LARGE', 'ERR_INVALID_FRAME', 'ERR_TRUNCATED_FRAME']).toContain(e.code);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('rejects an oversize frame as soon as its header arrives, before buffering any of it', () => {
    const codec = new LengthPrefixedCodec({ maxFrameLength: 1024 * 1024 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1024 * 1024 * 1024);
    expect(() => codec.decode(header, [])).toThrow(FrameTooLargeError);

    // Even a varint that has not finished arriving is rejected once its lower bound is too big.
    const varint = new LengthPrefixedCodec({ lengthFieldLength: 'varint', maxFrameLength: 1000 });
    expect(() => varint.decode(Buffer.from([0xff, 0xff]), [])).toThrow(
      expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }),
    );
  });

  it('rejects endless varints and lengths smaller than the header', () => {
    const varint = new LengthPrefixedCodec({ lengthFieldLength: 'varint' });
    expect(() => varint.decode(Buffer.alloc(12, 0x80), [])).toThrow(InvalidFrameError);
    const adjusted = new LengthPrefixedCodec({ lengthAdjustment: -4, initialBytesToStrip: 0 });
    expect(() => adjusted.decode(Buffer.from([0, 0, 0, 2]), [])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_FRAME' }),
    );
  });

  it('encodes varints as unsigned LEB128', () => {
    const codec = new LengthPrefixedCodec({ lengthFieldLength: 'varint' });
    const header = (n: number) => {
      const out = codec.encode(new Uint8Array(n));
      const bytes = concatEncoded([out]);
      return [...bytes.subarray(0, bytes.length - n)];
    };
    expect(header(0)).toEqual([0x00]);
    expect(header(127)).toEqual([0x7f]);
    expect(header(128)).toEqual([0x80, 0x01]);
    expect(header(300)).toEqual([0xac, 0x02]);
    expect(header(16_384)).toEqual([0x80, 0x80, 0x01]);
  });

  it('supports Netty-style headers: length including the header, a type byte before it, partial strip', () => {
    // [type:1][len:2 = whole frame incl. header][payload]; keep the type byte, drop only the length.
    const options: LengthPrefixedOptions = {
      lengthFieldOffset: 1,
      lengthFieldLength: 2,
      lengthAdjustment: -3,
      initialBytesToStrip: 0,
    };
    const wire = Buffer.from([0x07, 0x00, 0x08, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    const { frames } = drive(new LengthPrefixedCodec(options), bytewise(wire));
    expect(frames).toEqual([wire]);
    const stripped = drive(new LengthPrefixedCodec({ ...options, initialBytesToStrip: 3 }), [wire]);
    expect(stripped.frames.map((f) => f.toString())).toEqual(['hello']);
    // Little-endian 8-byte length.
    const le = new LengthPrefixedCodec({ lengthFieldLength: 8, byteOrder: 'little' });
    const frame = concatEncoded([le.encode(Buffer.from('abc'))]);
    expect([...frame.subarray(0, 8)]).toEqual([3, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('returns whole frames inside one chunk as zero-copy views', () => {
    const codec = new LengthPrefixedCodec();
    const wire = concatEncoded([codec.encode(Buffer.from('one')), codec.encode(Buffer.from('two'))]);
    const out: Buffer[] = [];
    codec.decode(wire, out);
    expect(out.map(String)).toEqual(['one', 'two']);
    for (const frame of out) expect(frame.buffer).toBe(wire.buffer);
  });

  itFuzz(
    'reassembles large frames split anywhere, into buffers that do not alias the input chunks',
    async () => {
      // Frames of a socket read's size (64 KiB) and above always straddle chunks and get reassembled;
      // the small ones in between may come back as zero-copy views.
      const sizes = [70_000, 5, 300_000, 65_536, 0, 262_140];
      const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1).fill(0xab, 0, Math.min(n, 7)));
      const encoder = new LengthPrefixedCodec({ maxFrameLength: 1 << 20 });
      const wire = concatEncoded(payloads.map((p) => encoder.encode(p)));
      await fuzz(
        'tcp-length-prefixed-5',
        fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
          // Each chunk gets its own memory, so overwriting one cannot touch another.
          const chunks = splitAt(wire, cuts).map((c) => new Uint8Array(c));
          const decoder = new LengthPrefixedCodec({ maxFrameLength: 1 << 20 });
          const frames: Buffer[] = [];
          for (const chunk of chunks) {
            decoder.decode(chunk, frames);
            expect(decoder.bufferedBytes).toBeLessThan(wire.length);
          }
          expect(decoder.bufferedBytes).toBe(0);
          // The transport may reuse a chunk's memory once no zero-copy view points into it.
          for (const chunk of chunks) if (frames.every((f) => f.buffer !== chunk.buffer)) chunk.fill(0);
          expect(frames.map((f) => f.length)).toEqual(sizes);
          for (let i = 0; i < frames.length; i++) expect(frames[i]!.equals(payloads[i]!)).toBe(true);
        }),
        { numRuns: 25 },
      );
    },
  );

  it('counts only received bytes while a large frame is arriving, and reports it truncated at end', () => {
    const codec = new LengthPrefixedCodec();
    const header = Buffer.from([0, 1, 0, 0]); // a 65 536-byte payload
    const out: Buffer[] = [];
    codec.decode(Buffer.concat([header, Buffer.alloc(10, 1)]), out);
    expect(codec.bufferedBytes).toBe(14);
    codec.decode(Buffer.alloc(1000, 2), out);
    expect(codec.bufferedBytes).toBe(1014);
    // Same with most of the frame in the first chunk.
    codec.reset();
    codec.decode(Buffer.concat([header, Buffer.alloc(40_000, 1)]), out);
    expect(codec.bufferedBytes).toBe(40_004);
    codec.decode(Buffer.alloc(1000, 2), out);
    expect(codec.bufferedBytes).toBe(41_004);
    expect(out).toEqual([]);
    expect(() => codec.end([])).toThrow(TruncatedFrameError);
    expect(codec.bufferedBytes).toBe(0);
    // The codec starts over cleanly after end().
    codec.decode(Buffer.from([0, 0, 0, 2, 7, 8]), out);
    expect(out.map((f) => [...f])).toEqual([[7, 8]]);
  });

  it('reset() drops a partly received large frame', () => {
    const codec = new LengthPrefixedCodec();
    const out: Buffer[] = [];
    codec.decode(Buffer.concat([Buffer.from([0, 0, 0x10, 0]), Buffer.alloc(1000)]), out);
    codec.reset();
    expect(codec.bufferedBytes).toBe(0);
    codec.decode(Buffer.from([0, 0, 0, 1, 9]), out);
    expect(out.map((f) => [...f])).toEqual([[9]]);
  });

  it('reports a stream that ends mid-frame', () => {
    const codec = new LengthPrefixedCodec();
    codec.decode(Buffer.from([0, 0, 0, 5, 1, 2]), []);
    expect(() => codec.end([])).toThrow(TruncatedFrameError);
    expect(codec.bufferedBytes).toBe(0);
  });

  it('refuses to encode what the peer would refuse to decode', () => {
    expect(() => new LengthPrefixedCodec({ maxFrameLength: 10 }).encode(new Uint8Array(7))).toThrow(
      FrameTooLargeError,
    );
    expect(() => new LengthPrefixedCodec({ lengthFieldLength: 1 }).encode(new Uint8Array(256))).toThrow(
      FrameTooLargeError,
    );
    expect(() => new LengthPrefixedCodec({ lengthAdjustment: 2 }).encode(new Uint8Array(1))).toThrow(
      InvalidFrameError,
    );
  });

  it('validates options up front', () => {
    expect(() => lengthPrefixed({ lengthFieldLength: 3 as 4 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
    expect(() => lengthPrefixed({ maxFrameLength: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });

  it('sends large payloads by reference next to a separate header', () => {
    const payload = Buffer.alloc(64 * 1024, 1);
    const out = new LengthPrefixedCodec().encode(payload);
    expect(Array.isArray(out)).toBe(true);
    expect((out as Uint8Array[])[1]).toBe(payload);
  });
});
