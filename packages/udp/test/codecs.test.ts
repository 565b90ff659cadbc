import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { decodeFrame, encodeFrame, type FrameKind, REQUEST_HEADER_SIZE } from '../src/index.js';

const RUNS = { numRuns: 300 };

/** A datagram is delivered whole, but it may sit at any offset inside a larger backing buffer. */
function embedded(bytes: Uint8Array, before: number, after: number): Uint8Array {
  const backing = new Uint8Array(before + bytes.length + after).fill(0xaa);
  backing.set(bytes, before);
  return backing.subarray(before, before + bytes.length);
}

describe('request header codec', () => {
  const kind = fc.constantFrom<FrameKind>('request', 'reply', 'error');
  const id = fc.integer({ min: 0, max: 0xffffffff });

  itFuzz('round-trips kind, id and payload at any buffer offset', async () => {
    await fuzz(
      'udp-codecs-1',
      fc.property(
        kind,
        id,
        fc.uint8Array({ maxLength: 2048 }),
        fc.nat(64),
        fc.nat(64),
        (k, i, payload, a, b) => {
          const frame = decodeFrame(embedded(encodeFrame(k, i, payload), a, b));
          expect(frame.kind).toBe(k);
          if (frame.kind === 'invalid') return;
          expect(frame.id).toBe(i);
          expect(Buffer.compare(frame.payload, Buffer.from(payload))).toBe(0);
        },
      ),
      RUNS,
    );
  });

  itFuzz('never throws on arbitrary bytes and accepts only well-formed headers', async () => {
    await fuzz(
      'udp-codecs-2',
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const frame = decodeFrame(bytes);
        const wellFormed = bytes.length >= 8 && bytes[0] === 0xae && bytes[1] === 0x55 && bytes[2] === 1;
        expect(frame.kind !== 'invalid').toBe(wellFormed);
      }),
      { numRuns: 1000 },
    );
  });

  it('ignores reserved flag bits and reports why a frame is invalid', () => {
    const frame = encodeFrame('reply', 7, 'x');
    frame[3] = frame[3]! | 0xf0;
    expect(decodeFrame(frame)).toMatchObject({ kind: 'reply', id: 7 });
    expect(decodeFrame(new Uint8Array(3))).toEqual({ kind: 'invalid', reason: 'too-short' });
    expect(decodeFrame(Buffer.from('GET / HTTP/1.1'))).toEqual({ kind: 'invalid', reason: 'bad-magic' });
    const future = encodeFrame('request', 1);
    future[2] = 2;
    expect(decodeFrame(future)).toEqual({ kind: 'invalid', reason: 'unsupported-version' });
    expect(encodeFrame('request', 0xffffffff).length).toBe(REQUEST_HEADER_SIZE);
    expect(() => encodeFrame('request', -1)).toThrow(RangeError);
  });

  itFuzz('decodes a header split across an arbitrary prefix of a larger datagram', async () => {
    await fuzz(
      'udp-codecs-3',
      fc.property(id, fc.uint8Array({ maxLength: 100 }), fc.nat(108), (i, payload, cut) => {
        const bytes = encodeFrame('request', i, payload);
        const prefix = bytes.subarray(0, Math.min(cut, bytes.length));
        const frame = decodeFrame(prefix);
        if (prefix.length < REQUEST_HEADER_SIZE)
          expect(frame).toEqual({ kind: 'invalid', reason: 'too-short' });
        else expect(frame).toMatchObject({ kind: 'request', id: i });
      }),
      RUNS,
    );
  });
});
