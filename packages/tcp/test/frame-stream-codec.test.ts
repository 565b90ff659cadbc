import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError, TcpError, TruncatedFrameError } from '../src/errors.js';
import type { FrameEvent } from '../src/frame-events.js';
import { LengthPrefixedCodec, lengthPrefixed } from '../src/index.js';
import type { LengthPrefixedOptions } from '../src/options.js';
import { chunked, concatEncoded, cutsArb, drive } from './helpers.js';

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
  return chunks.map((c) => Buffer.from(Uint8Array.from(c).buffer));
}

interface Rebuilt {
  payload: Buffer;
  streamed: boolean;
}

/** Checks the event grammar (frame | start chunk* end) and rebuilds the frames it describes. */
function rebuild(events: FrameEvent[]): { frames: Rebuilt[]; open: boolean } {
  const frames: Rebuilt[] = [];
  let parts: Buffer[] | undefined;
  let announced = 0;
  for (const event of events) {
    if (event.type === 'frame') {
      expect(parts).toBeUndefined();
      frames.push({ payload: event.payload, streamed: false });
    } else if (event.type === 'start') {
      expect(parts).toBeUndefined();
      parts = [];
      announced = event.length;
    } else if (event.type === 'chunk') {
      expect(parts).toBeDefined();
      expect(event.data.length).toBeGreaterThan(0);
      parts!.push(event.data);
    } else {
      expect(parts).toBeDefined();
      const payload = Buffer.concat(parts!);
      expect(payload.length).toBe(announced);
      frames.push({ payload, streamed: true });
      parts = undefined;
    }
  }
  return { frames, open: parts !== undefined };
}

function encodeAll(options: LengthPrefixedOptions, payloads: Uint8Array[]): Buffer[] {
  const encoder = new LengthPrefixedCodec(options);
  return payloads.map((p) => concatEncoded([encoder.encode(p)]));
}

describe("lengthPrefixed({ frames: 'stream' }) codec", () => {
  it('streams exactly the frames the contiguous mode decodes, for any options, threshold and chunking, never copying and never buffering a streamed frame', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.integer({ min: 0, max: 400 }),
        fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 10 }),
        cutsArb,
        (options, threshold, payloads, cuts) => {
          const adjust = options.lengthAdjustment ?? 0;
          const valid = payloads.map((p) => (p.length >= adjust ? p : new Uint8Array(adjust)));
          const encoded = encodeAll(options, valid);
          const strip = options.initialBytesToStrip;
          fc.pre(strip === undefined || encoded.every((f) => f.length >= strip));
          const chunks = ownMemory(chunked(Buffer.concat(encoded), cuts));

          const contiguous = drive(new LengthPrefixedCodec(options), chunks);
          const codec = new LengthPrefixedCodec<FrameEvent>({
            ...options,
            frames: 'stream',
            streamThreshold: threshold,
          });
          expect(codec.frameEvents).toBe(true);
          const streamed = drive(codec, chunks);
          expect(streamed.errors).toEqual([]);
          const { frames, open } = rebuild(streamed.frames);
          expect(open).toBe(false);
          expect(frames.map((f) => f.payload)).toEqual(contiguous.frames);
          for (const f of frames) expect(f.streamed).toBe(f.payload.length >= threshold);
          // Only frames below the threshold are ever held: the header, strip and payload < threshold.
          expect(streamed.maxBuffered).toBeLessThan(threshold + 16);
          for (const e of streamed.frames) {
            if (e.type === 'chunk') expect(chunks.some((c) => c.buffer === e.data.buffer)).toBe(true);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never crashes or buffers more than the threshold on valid frames followed by arbitrary bytes', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 2000, max: 5000 }),
        fc.array(fc.uint8Array({ maxLength: 1500, size: 'max' }), { maxLength: 3 }),
        fc.uint8Array({ maxLength: 1000, size: 'max' }),
        cutsArb,
        (options, threshold, maxFrameLength, payloads, garbage, cuts) => {
          const shared = { ...options, lengthAdjustment: 0, initialBytesToStrip: undefined, maxFrameLength };
          const encoder = new LengthPrefixedCodec(shared);
          const frames: Buffer[] = [];
          for (const p of payloads) {
            try {
              frames.push(concatEncoded([encoder.encode(p)]));
            } catch {} // too long for a 1-byte length field: leave it out
          }
          const codec = new LengthPrefixedCodec<FrameEvent>({
            ...shared,
            frames: 'stream',
            streamThreshold: threshold,
          });
          // drive() rethrows anything that is not a TcpError (that would be a crash).
          const chunks = chunked(Buffer.concat([...frames, garbage]), cuts);
          const result = drive(codec, chunks);
          // A chunk that ends in a fatal error stays in the codec (the connection then closes).
          const slack = result.errors.length === 0 ? 0 : Math.max(0, ...chunks.map((c) => c.length));
          expect(result.maxBuffered).toBeLessThan(threshold + 16 + slack);
          const { frames: rebuilt } = rebuild(result.frames);
          expect(rebuilt.slice(0, frames.length).map((f) => f.payload)).toEqual(
            frames.map((f) => drive(new LengthPrefixedCodec(shared), [f]).frames[0]),
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reports ERR_TRUNCATED_FRAME at end() exactly when the input stops inside a frame (streamed or not)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }),
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        cutsArb,
        (threshold, payloads, cutAt, cuts) => {
          const encoded = encodeAll({ lengthFieldLength: 2 }, payloads);
          const all = Buffer.concat(encoded);
          const cut = cutAt % (all.length + 1);
          const boundaries = new Set([0]);
          let at = 0;
          for (const f of encoded) boundaries.add((at += f.length));
          const codec = new LengthPrefixedCodec<FrameEvent>({
            lengthFieldLength: 2,
            frames: 'stream',
            streamThreshold: threshold,
          });
          const result = drive(codec, chunked(all.subarray(0, cut), cuts));
          if (boundaries.has(cut)) {
            expect(result.errors).toEqual([]);
            expect(rebuild(result.frames).open).toBe(false);
          } else {
            expect(result.errors).toHaveLength(1);
            expect(result.errors[0]).toBeInstanceOf(TruncatedFrameError);
          }
          expect(codec.bufferedBytes).toBe(0); // end() resets
        },
      ),
      { numRuns: 300 },
    );
  });

  it('passes a 256 MiB frame through in 64 KiB reads holding nothing, then decodes the next frame', () => {
    const codec = new LengthPrefixedCodec<FrameEvent>({ frames: 'stream' });
    const size = 256 * 1024 * 1024;
    const header = Buffer.alloc(4);
    header.writeUInt32BE(size);
    const piece = Buffer.alloc(64 * 1024, 7);
    const out: FrameEvent[] = [];
    codec.decode(header, out);
    expect(out).toEqual([{ type: 'start', length: size }]);
    out.length = 0;
    let bytes = 0;
    for (let sent = 0; sent < size; sent += piece.length) {
      codec.decode(piece, out);
      expect(codec.bufferedBytes).toBe(0);
      for (const e of out) if (e.type === 'chunk') bytes += e.data.length;
      const last = out[out.length - 1];
      if (sent + piece.length < size) expect(last?.type).toBe('chunk');
      else expect(last).toEqual({ type: 'end' });
      out.length = 0;
    }
    expect(bytes).toBe(size);
    codec.decode(Buffer.from([0, 0, 0, 2, 104, 105]), out);
    expect(out).toEqual([{ type: 'frame', payload: Buffer.from('hi') }]);
  });

  it('defaults maxFrameLength to 4 GiB in stream mode and still enforces it from the header alone', () => {
    const header = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(Math.floor(n / 2 ** 32));
      b.writeUInt32BE(n % 2 ** 32, 4);
      return b;
    };
    const out: FrameEvent[] = [];
    const streaming = new LengthPrefixedCodec<FrameEvent>({ lengthFieldLength: 8, frames: 'stream' });
    streaming.decode(header(3 * 2 ** 30), out);
    expect(out).toEqual([{ type: 'start', length: 3 * 2 ** 30 }]);
    expect(() =>
      new LengthPrefixedCodec<FrameEvent>({ lengthFieldLength: 8, frames: 'stream' }).decode(
        header(2 ** 32),
        [],
      ),
    ).toThrow(FrameTooLargeError);
    expect(() => new LengthPrefixedCodec({ lengthFieldLength: 8 }).decode(header(3 * 2 ** 30), [])).toThrow(
      FrameTooLargeError,
    );
  });

  it('validates streamThreshold', () => {
    const invalid = expect.objectContaining({ code: 'ERR_INVALID_OPTION' });
    expect(() => lengthPrefixed({ streamThreshold: 10 })).toThrow(invalid);
    expect(() => lengthPrefixed({ frames: 'stream', streamThreshold: -1 })).toThrow(invalid);
    expect(() => lengthPrefixed({ frames: 'stream', streamThreshold: 1.5 })).toThrow(invalid);
    expect(() => lengthPrefixed({ frames: 'stream', maxFrameLength: 100, streamThreshold: 101 })).toThrow(
      invalid,
    );
    expect(() => lengthPrefixed({ frames: 'stream', streamThreshold: 0 })).not.toThrow();
    expect(() => lengthPrefixed({ frames: 'stream', streamThreshold: 10 })).not.toThrow(TcpError);
  });
});
