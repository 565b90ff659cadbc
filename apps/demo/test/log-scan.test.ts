import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LogHandle } from '../src/store/log-handle.js';
import { type LogRecord, scanSegment } from '../src/store/segments.js';

/** An in-memory segment whose reads return arbitrary short counts: every chunk boundary occurs. */
function memHandle(data: Buffer, cuts: number[]): LogHandle {
  let i = 0;
  return {
    async read(buffer, offset, length, position) {
      const want = Math.max(1, Math.min(length, cuts[i++ % cuts.length] ?? length));
      const n = data.copy(buffer, offset, position, Math.min(data.length, position + want));
      return { bytesRead: n };
    },
    write: async () => ({ bytesWritten: 0 }),
    datasync: async () => {},
    truncate: async () => {},
    stat: async () => ({ size: data.length }),
    close: async () => {},
  };
}

const message = fc.record({
  id: fc.tuple(fc.nat(1e12), fc.nat(1000)).map(([a, b]) => `${a}-${b}`),
  room: fc.string({ minLength: 1, maxLength: 20 }),
  nick: fc.string({ minLength: 1, maxLength: 20 }),
  text: fc.string({ unit: 'grapheme', maxLength: 200 }),
  ts: fc.nat(),
});
const garbage = fc
  .string({ maxLength: 50 })
  .filter((s) => !s.includes('\n'))
  .map((s) => `#${s}`);

describe('log recovery scan (property)', () => {
  it('finds exactly the whole valid lines, whatever the read boundaries, garbage lines and torn tail', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(message, garbage), { maxLength: 40 }),
        fc.string({ maxLength: 40 }).filter((s) => !s.includes('\n')),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 10 }),
        async (items, torn, cuts) => {
          const whole = items.map((x) => `${typeof x === 'string' ? x : JSON.stringify(x)}\n`).join('');
          const data = Buffer.from(whole + torn);
          const found: LogRecord[] = [];
          let corrupt = 0;
          const { good, size } = await scanSegment(memHandle(data, cuts), {
            onRecord: (r) => found.push(r),
            onCorrupt: () => corrupt++,
          });
          expect(size).toBe(data.length);
          expect(good).toBe(Buffer.byteLength(whole));
          const expected = items.filter((x) => typeof x !== 'string');
          expect(found.map((r) => r.message)).toEqual(expected);
          expect(corrupt).toBe(items.length - expected.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('skips arbitrary bytes without throwing and never reports a line past the last newline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 5 }),
        async (bytes, cuts) => {
          const data = Buffer.from(bytes);
          const { good } = await scanSegment(memHandle(data, cuts), {
            onRecord: () => {},
            onCorrupt: () => {},
          });
          expect(good).toBe(data.lastIndexOf(10) + 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
