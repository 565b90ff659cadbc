import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { InvalidFrameError, LineTooLongError, TruncatedFrameError } from '../src/errors.js';
import { LineCodec, lines } from '../src/line.js';
import { bytewise, chunked, concatEncoded, cutsArb, drive } from './helpers.js';

/** Strings that survive UTF-8 (no lone surrogates). */
const textArb = fc
  .oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }))
  .filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s);

const delimiterArb = fc.constantFrom('\n', '\r\n', '||', '\0', '¶', 'END');

describe('line codec', () => {
  itFuzz('round-trips random lines for every delimiter, including UTF-8 split across chunks', async () => {
    await fuzz(
      'tcp-line-1',
      fc.property(delimiterArb, fc.array(textArb, { maxLength: 12 }), cutsArb, (delimiter, texts, cuts) => {
        const stripCR = delimiter === '\n';
        const valid = texts.filter((t) => !t.includes(delimiter) && !(stripCR && t.endsWith('\r')));
        const codec = lines({ delimiter })();
        const wire = concatEncoded(valid.map((t) => codec.encode(t)));
        const { frames, errors } = drive(lines({ delimiter })(), chunked(wire, cuts));
        expect(errors).toEqual([]);
        expect(frames).toEqual(valid);
      }),
      { numRuns: 400 },
    );
  });

  itFuzz('encodeInto writes exactly the bytes encode returns, or reports that it does not fit', async () => {
    await fuzz(
      'tcp-line-2',
      fc.property(delimiterArb, textArb, fc.integer({ min: 0, max: 200 }), (delimiter, text, room) => {
        const codec = lines({ delimiter })();
        fc.pre(!text.includes(delimiter) && !(delimiter === '\n' && text.endsWith('\r')));
        const expected = concatEncoded([codec.encode(text)]);
        const target = Buffer.alloc(2 + room);
        const written = codec.encodeInto!(text, target, 2);
        if (expected.length > room) expect(written).toBe(-1);
        else expect(target.subarray(2, 2 + written).toString('hex')).toBe(expected.toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  itFuzz(
    'round-trips for random option combinations (stripCR, CRLF encoding, trailing-line policy)',
    async () => {
      const optionsArb = fc.oneof(
        fc.record({ delimiter: delimiterArb, stripCR: fc.boolean(), emitTrailingLine: fc.boolean() }),
        fc.record({
          delimiter: fc.constant('\n'),
          encodeDelimiter: fc.constant('\r\n'),
          stripCR: fc.constant(true),
          emitTrailingLine: fc.boolean(),
        }),
      );
      await fuzz(
        'tcp-line-3',
        fc.property(optionsArb, fc.array(textArb, { maxLength: 10 }), cutsArb, (options, texts, cuts) => {
          const valid = texts.filter(
            (t) => !t.includes(options.delimiter) && !(options.stripCR && t.endsWith('\r')),
          );
          const wire = concatEncoded(valid.map((t) => lines(options)().encode(t)));
          const { frames, errors } = drive(lines(options)(), chunked(wire, cuts));
          expect(errors).toEqual([]);
          expect(frames).toEqual(valid);
        }),
        { numRuns: 300 },
      );
    },
  );

  itFuzz('round-trips arbitrary bytes in buffer mode', async () => {
    await fuzz(
      'tcp-line-4',
      fc.property(
        fc.constantFrom('\n', '\r\n', 'ab'),
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
        cutsArb,
        (delimiter, payloads, cuts) => {
          const d = Buffer.from(delimiter);
          const valid = payloads
            .map((p) => Buffer.from(p))
            .filter((p) => !p.includes(d) && p[p.length - 1] !== 0x0d);
          const factory = lines({ delimiter, output: 'buffer' });
          const wire = concatEncoded(valid.map((p) => factory().encode(p)));
          const { frames, errors } = drive(factory(), chunked(wire, cuts));
          expect(errors).toEqual([]);
          expect(frames.map((f) => f.toString('hex'))).toEqual(valid.map((p) => p.toString('hex')));
        },
      ),
      { numRuns: 300 },
    );
  });

  itFuzz(
    'on random bytes matches a split() model, drops over-long lines and stays within maxLineLength',
    async () => {
      await fuzz(
        'tcp-line-5',
        fc.property(
          fc.constantFrom('\n', '\r\n', 'ab', 'aab'),
          fc.integer({ min: 0, max: 20 }),
          // A small alphabet makes delimiters and near-delimiters frequent.
          fc.array(fc.constantFrom(0x61, 0x62, 0x0d, 0x0a, 0x7a), { maxLength: 300 }),
          cutsArb,
          (delimiter, maxLineLength, bytes, cuts) => {
            const input = Buffer.from(bytes);
            const stripCR = delimiter === '\n';
            const codec = new LineCodec<Buffer>({ delimiter, maxLineLength, output: 'buffer' });
            const { frames, errors, maxBuffered } = drive(codec, chunked(input, cuts));

            const segments = input.toString('latin1').split(delimiter);
            const trailing = segments.pop()!;
            const expected: string[] = [];
            let tooLong = 0;
            const accept = (segment: string) => {
              const line = stripCR && segment.endsWith('\r') ? segment.slice(0, -1) : segment;
              if (line.length > maxLineLength) tooLong++;
              else expected.push(line);
            };
            segments.forEach(accept);
            if (trailing.length > 0) accept(trailing);

            expect(frames.map((f) => f.toString('latin1'))).toEqual(expected);
            expect(errors.length).toBeGreaterThanOrEqual(tooLong > 0 ? 1 : 0);
            for (const e of errors) expect(e).toBeInstanceOf(LineTooLongError);
            expect(maxBuffered).toBeLessThanOrEqual(maxLineLength + delimiter.length + 1);
          },
        ),
        { numRuns: 500 },
      );
    },
  );

  it('tolerates \\r\\n and emits a final unterminated line at end of stream', () => {
    const { frames } = drive(lines()(), bytewise(Buffer.from('hello\r\nworld\n\r\nlast')));
    expect(frames).toEqual(['hello', 'world', '', 'last']);
  });

  it('fails fast on a line that never ends, then resynchronises at the next delimiter', () => {
    const codec = lines({ maxLineLength: 8 })();
    const out: string[] = [];
    codec.decode(Buffer.from('ok\n'), out);
    let error: unknown;
    try {
      codec.decode(Buffer.alloc(1000, 0x61), out);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LineTooLongError);
    expect((error as LineTooLongError).code).toBe('ERR_LINE_TOO_LONG');
    expect((error as LineTooLongError).recoverable).toBe(true);
    expect(codec.bufferedBytes).toBeLessThanOrEqual(1);
    codec.decode(Buffer.alloc(5000, 0x61), out); // still discarding, no second error
    codec.decode(Buffer.from('aaa\nnext\n'), out);
    expect(out).toEqual(['ok', 'next']);
  });

  it('keeps the rest of the chunk after an over-long line so decoding can resume in order', () => {
    const codec = lines({ maxLineLength: 3 })();
    const out: string[] = [];
    expect(() => codec.decode(Buffer.from('a\ntoolong\nb\n'), out)).toThrow(LineTooLongError);
    expect(out).toEqual(['a']);
    codec.decode(Buffer.alloc(0), out);
    expect(out).toEqual(['a', 'b']);
  });

  it('returns zero-copy views in buffer mode', () => {
    const wire = Buffer.from('one\ntwo\n');
    const out: Buffer[] = [];
    lines({ output: 'buffer' })().decode(wire, out);
    expect(out.map(String)).toEqual(['one', 'two']);
    for (const line of out) expect(line.buffer).toBe(wire.buffer);
  });

  it('replaces invalid UTF-8 by default and rejects it with fatalUtf8', () => {
    const bad = Buffer.from([0x61, 0xff, 0x62, 0x0a]);
    expect(drive(lines()(), [bad]).frames).toEqual(['a\uFFFDb']);
    const strict = drive(lines({ fatalUtf8: true })(), [
      Buffer.concat([Buffer.from('a\n'), bad, Buffer.from('b\n')]),
      Buffer.from('ok\n'),
    ]);
    expect(strict.errors[0]).toBeInstanceOf(InvalidFrameError);
    expect(strict.frames).toEqual(['a', 'b', 'ok']);
  });

  it('decodes a multi-byte character split at every possible byte', () => {
    const wire = Buffer.from('héllo 世界 🎉\n');
    for (let cut = 1; cut < wire.length; cut++) {
      expect(drive(lines()(), [wire.subarray(0, cut), wire.subarray(cut)]).frames).toEqual(['héllo 世界 🎉']);
    }
  });

  it('refuses to encode a line the peer could not decode back', () => {
    const codec = lines({ maxLineLength: 4 })();
    expect(() => codec.encode('a\nb')).toThrow(InvalidFrameError);
    expect(() => codec.encode('ab\r')).toThrow(InvalidFrameError);
    expect(() => codec.encode('abcde')).toThrow(LineTooLongError);
    expect(concatEncoded([lines({ encodeDelimiter: '\r\n' })().encode('hi')]).toString()).toBe('hi\r\n');
  });

  it('can treat a missing final delimiter as truncation', () => {
    const codec = lines({ emitTrailingLine: false })();
    codec.decode(Buffer.from('partial'), []);
    expect(() => codec.end([])).toThrow(TruncatedFrameError);
  });
});
