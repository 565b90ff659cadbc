import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { FileStore } from '../src/store/index.js';
import type { StoredMessage } from '../src/store/types.js';
import { JsonSession } from '../src/transports/json-session.js';
import { LineSession } from '../src/transports/line-session.js';
import { fakeTokens, useFileCore } from './helpers/core.js';

/**
 * The demo's three parsers under random input (`pnpm fuzz` runs these with FUZZ_RUNS): the line
 * protocol (what netcat users type), the JSON frames (what browsers and the terminal client send)
 * and the recovery of the append-only message log after a crash or corruption.
 */

const fx = useFileCore('chat-fuzz-');

/** Text a user might type: commands, near-commands, control characters, long and non-ASCII input. */
const typed = fc.oneof(
  fc.string({ maxLength: 200, unit: 'binary' }),
  fc
    .constantFrom('/nick', '/join', '/part', '/me', '/who', '/rooms', '/help', '/history', '/token', '/')
    .chain((cmd) => fc.string({ maxLength: 60, unit: 'binary' }).map((rest) => `${cmd} ${rest}`)),
  fc.string({ minLength: 1000, maxLength: 20_000 }),
);

/** Frames a client might send: valid shapes with random fields, arbitrary JSON, and non-JSON. */
const frameText = fc.oneof(
  fc.string({ maxLength: 300, unit: 'binary' }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        type: fc.constantFrom(
          'hello',
          'join',
          'part',
          'send',
          'who',
          'history',
          'typing',
          'ping',
          'nick',
          'x',
        ),
        room: fc.oneof(fc.constantFrom('lobby', 'dev'), fc.string({ maxLength: 40 })),
        text: fc.string({ maxLength: 500, unit: 'binary' }),
        nick: fc.string({ maxLength: 30 }),
        ref: fc.oneof(fc.string({ maxLength: 80 }), fc.integer()),
        cid: fc.string({ maxLength: 80 }),
        after: fc.string({ maxLength: 30 }),
        limit: fc.oneof(fc.integer(), fc.double()),
      },
      { requiredKeys: ['type'] },
    )
    .map((v) => JSON.stringify(v)),
);

describe('line protocol', () => {
  itFuzz('answers any typed lines with single lines, never throwing', async () => {
    await fuzz(
      'demo-line-protocol',
      fc.asyncProperty(fc.array(typed, { maxLength: 12 }), async (input) => {
        const lines: string[] = [];
        const s = new LineSession(
          fx.core,
          { writeLine: (l) => lines.push(l), end: () => {} },
          { transport: 'tcp', serverName: 'fuzz', tokens: fakeTokens },
        );
        await s.start();
        for (const line of input) {
          s.onLine(line);
          await s.drain();
        }
        await s.end();
        // Every answer is one printable line: nothing a peer sent can inject a line break.
        for (const l of lines) expect(l).not.toMatch(/[\r\n]/);
        expect(lines.length).toBeGreaterThan(0); // at least the greeting
      }),
      { numRuns: 30 },
    );
  });
});

describe('JSON frames', () => {
  itFuzz('answers any frames with well-formed JSON frames or a policy close, never throwing', async () => {
    await fuzz(
      'demo-json-frames',
      fc.asyncProperty(fc.array(frameText, { maxLength: 12 }), async (input) => {
        const frames: Record<string, unknown>[] = [];
        const closes: number[] = [];
        const s = new JsonSession(
          fx.core,
          { send: (t) => frames.push(JSON.parse(t)), close: (code) => closes.push(code) },
          {
            transport: 'ws',
            serverName: 'fuzz',
            tokens: fakeTokens,
            maxFrameBytes: 16384,
            ratePerSecond: 1000,
            burst: 1000,
            maxInvalidFrames: 5,
          },
        );
        await s.start();
        for (const text of input) {
          s.onText(text);
          await s.drain();
        }
        await s.end();
        for (const f of frames) expect(typeof f.type).toBe('string');
        // Only the documented close codes: policy violation (too many invalid frames) or too big.
        for (const code of closes) expect([1008, 1009]).toContain(code);
      }),
      { numRuns: 30 },
    );
  });
});

describe('message log recovery', () => {
  itFuzz('recovers exactly the intact records before a cut, skipping garbage lines', async () => {
    // A real log written by the store, then damaged: garbage lines inserted, the tail cut anywhere.
    const base = mkdtempSync(join(tmpdir(), 'chat-fuzz-log-'));
    const writer = new FileStore({ dataDir: base });
    await writer.open();
    const originals: StoredMessage[] = [];
    for (let i = 0; i < 12; i++) {
      originals.push(await writer.append(i % 3 === 0 ? 'dev' : 'lobby', `n${i % 4}`, `message ${i} ✓`));
    }
    // The store writes segments (log/NNNNNNNNNN.log); a damaged single-file log from an older
    // version goes through the same recovery, after its migration to the first segment.
    const written = writer.path;
    await writer.close();
    const lines = readFileSync(written, 'utf8').split('\n').slice(0, -1);
    expect(lines).toHaveLength(originals.length);
    rmSync(base, { recursive: true, force: true });

    const garbage = fc
      .uint8Array({ maxLength: 120 })
      .map((b) => Buffer.from(b.map((x) => (x === 10 ? 32 : x))));
    await fuzz(
      'demo-log-recovery',
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(originals.length), garbage), { maxLength: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (inserts, cutAt) => {
          // Assemble the damaged file, remembering where each original record's line ends.
          const parts: Buffer[] = [];
          const ends: number[] = [];
          let size = 0;
          const push = (b: Buffer) => {
            parts.push(b);
            size += b.length;
          };
          for (let i = 0; i <= lines.length; i++) {
            for (const [at, bytes] of inserts) if (at === i) push(Buffer.concat([bytes, Buffer.from('\n')]));
            if (i < lines.length) {
              push(Buffer.from(`${lines[i]}\n`));
              ends.push(size);
            }
          }
          const whole = Buffer.concat(parts);
          const cut = Math.floor(cutAt * whole.length);
          const dir = mkdtempSync(join(tmpdir(), 'chat-fuzz-log-'));
          try {
            writeFileSync(join(dir, 'messages.log'), whole.subarray(0, cut));
            const store = new FileStore({ dataDir: dir });
            await store.open();
            const recovered = store.path;
            const expected = originals.filter((_, i) => ends[i]! <= cut);
            for (const room of ['lobby', 'dev']) {
              const { messages } = await store.read(room, { limit: 100 });
              expect(messages.map((m) => m.id)).toEqual(
                expected.filter((m) => m.room === room).map((m) => m.id),
              );
              expect(messages).toEqual(expected.filter((m) => m.room === room));
            }
            await store.close();
            // The torn tail is gone: the file now ends at a line boundary.
            const after = readFileSync(recovered);
            expect(after.length === 0 || after[after.length - 1] === 10).toBe(true);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
