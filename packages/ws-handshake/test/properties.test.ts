import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import {
  computeAcceptKey,
  encodeFrame,
  formatExtension,
  parseExtensions,
  Receiver,
  type ReceiverSink,
  validateUpgradeRequest,
} from '../src/index.js';
import { applyMask } from '../src/mask.js';
import { UTF8_ACCEPT, UTF8_REJECT, utf8Feed } from '../src/utf8.js';

type Event =
  | ['message', string | Buffer, boolean]
  | ['ping' | 'pong', Buffer]
  | ['close', number, string]
  | ['error', string];

function collector(): { sink: ReceiverSink; events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    sink: {
      onMessage: (d, b) => events.push(['message', typeof d === 'string' ? d : Buffer.from(d), b]),
      onPing: (d) => events.push(['ping', Buffer.from(d)]),
      onPong: (d) => events.push(['pong', Buffer.from(d)]),
      onClose: (c, r) => events.push(['close', c, r]),
      onError: (e) => events.push(['error', e.code]),
    },
  };
}

/** Split `buf` at the given cut points (mod length). */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (buf.length === 0 ? 0 : c % buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(Buffer.from(buf.subarray(prev, p)));
    prev = Math.max(prev, p);
  }
  out.push(Buffer.from(buf.subarray(prev)));
  return out;
}

const message = fc.oneof(
  fc.record({
    kind: fc.constant('text' as const),
    text: fc.string({ unit: 'grapheme', maxLength: 300 }),
    parts: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    kind: fc.constant('binary' as const),
    data: fc.uint8Array({ maxLength: 70_000 }),
    parts: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }) }),
);

describe('receiver properties', () => {
  itFuzz('decodes any sequence of messages, fragments and pings under arbitrary chunking', async () => {
    await fuzz(
      'ws-properties-1',
      fc.property(
        fc.array(message, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.boolean(),
        (messages, cuts, masked) => {
          const frames: Buffer[] = [];
          const expected: Event[] = [];
          for (const m of messages) {
            if (m.kind === 'ping') {
              frames.push(frameBuf(encodeFrame(9, m.data, true, false, masked)));
              expected.push(['ping', Buffer.from(m.data)]);
              continue;
            }
            const bytes = m.kind === 'text' ? Buffer.from(m.text) : Buffer.from(m.data);
            const step = Math.ceil(bytes.length / m.parts) || 1;
            const pieces: Buffer[] = [];
            for (let off = 0; off < bytes.length; off += step) pieces.push(bytes.subarray(off, off + step));
            if (pieces.length === 0) pieces.push(Buffer.alloc(0));
            pieces.forEach((p, i) => {
              const opcode = i === 0 ? (m.kind === 'text' ? 1 : 2) : 0;
              frames.push(frameBuf(encodeFrame(opcode, p, i === pieces.length - 1, false, masked)));
            });
            expected.push(m.kind === 'text' ? ['message', m.text, false] : ['message', bytes, true]);
          }
          const { sink, events } = collector();
          const r = new Receiver(sink, { isServer: masked, maxPayload: 1 << 20 });
          for (const chunk of split(Buffer.concat(frames), cuts)) r.push(chunk);
          expect(events).toEqual(expected);
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  itFuzz('never crashes, hangs or buffers beyond maxPayload on random bytes', async () => {
    const maxPayload = 4096;
    await fuzz(
      'ws-properties-2',
      fc.property(
        fc.uint8Array({ maxLength: 20_000 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        (bytes, cuts, isServer) => {
          const { sink, events } = collector();
          const r = new Receiver(sink, { isServer, maxPayload });
          for (const chunk of split(Buffer.from(bytes), cuts)) {
            r.push(chunk);
            // Undecoded input never exceeds one frame header + a control payload + maxPayload
            // + the chunk just pushed.
            expect(r.bufferedBytes).toBeLessThanOrEqual(maxPayload + 14 + 125 + chunk.length);
          }
          const terminal = events.filter((e) => e[0] === 'error' || e[0] === 'close');
          expect(terminal.length).toBeLessThanOrEqual(1);
          if (terminal.length === 1) expect(events[events.length - 1]).toBe(terminal[0]);
          for (const e of events) {
            if (e[0] === 'message') expect((e[1] as string | Buffer).length).toBeLessThanOrEqual(maxPayload);
            if (e[0] === 'error')
              expect([
                'ERR_WS_PROTOCOL',
                'ERR_WS_INVALID_UTF8',
                'ERR_WS_MESSAGE_TOO_BIG',
                'ERR_WS_INVALID_CLOSE_CODE',
              ]).toContain(e[1]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

function frameBuf(f: Buffer | [Buffer, Buffer]): Buffer {
  return Array.isArray(f) ? Buffer.concat(f) : f;
}

describe('incremental UTF-8 validation', () => {
  const bytesLikeUtf8 = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
    fc
      .tuple(
        fc.string({ unit: 'grapheme', maxLength: 100 }),
        fc.uint8Array({ maxLength: 3 }),
        fc.string({ maxLength: 100 }),
      )
      .map(([a, b, c]) => Buffer.concat([Buffer.from(a), Buffer.from(b), Buffer.from(c)])),
  );

  itFuzz('agrees with the native validator under any split', async () => {
    await fuzz(
      'ws-properties-3',
      fc.property(bytesLikeUtf8, fc.array(fc.nat(), { maxLength: 10 }), (buf, cuts) => {
        let state = UTF8_ACCEPT;
        for (const piece of split(buf, cuts)) {
          if (state === UTF8_REJECT) break;
          state = utf8Feed(piece, state);
        }
        expect(state === UTF8_ACCEPT).toBe(isUtf8(buf));
      }),
      { numRuns: 500 },
    );
  });

  itFuzz('agrees with the native validator on long inputs (fast path)', async () => {
    await fuzz(
      'ws-properties-4',
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 30, maxLength: 400 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (s, pos, byte) => {
          const buf = Buffer.from(s);
          const bad = Buffer.from(buf);
          if (bad.length > 0) bad[pos % bad.length] = byte;
          for (const b of [buf, bad]) {
            const half = b.length >> 1;
            const st = utf8Feed(b.subarray(half), utf8Feed(b.subarray(0, half), UTF8_ACCEPT));
            expect(st === UTF8_ACCEPT).toBe(isUtf8(b));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('extension header codec', () => {
  const token = fc.stringMatching(/^[a-z0-9_-]{1,12}$/);
  itFuzz('round-trips parse(format(x))', async () => {
    await fuzz(
      'ws-properties-5',
      fc.property(
        fc.array(
          fc.record({
            name: token,
            params: fc.array(fc.tuple(token, fc.oneof(fc.constant(true as const), token)), { maxLength: 4 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (offers) => {
          const header = offers.map(formatExtension).join(', ');
          expect(parseExtensions(header)).toEqual(offers);
        },
      ),
      { numRuns: 200 },
    );
  });
  itFuzz('never throws on arbitrary input', async () => {
    await fuzz(
      'ws-properties-6',
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const r = parseExtensions(s);
        expect(r === null || Array.isArray(r)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  it('unquotes quoted values', () => {
    expect(parseExtensions('permessage-deflate; client_max_window_bits="10"')).toEqual([
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
    ]);
  });
});

describe('receiver memory under a byte-at-a-time drip', () => {
  for (const compressed of [false, true]) {
    it(`keeps memory proportional to the payload (${compressed ? 'compressed' : 'plain'} frame)`, () => {
      const size = 256 * 1024;
      const payload = Buffer.alloc(size, 0x61);
      let held: Buffer | null = null;
      const inflater = {
        decompress(data: Buffer, _fin: boolean, _limit: number, cb: (e: null, d: Buffer) => void) {
          held = data;
          cb(null, Buffer.alloc(0));
        },
      };
      const { sink, events } = collector();
      const r = new Receiver(sink, {
        isServer: false,
        maxPayload: 1 << 20,
        inflater: compressed ? inflater : null,
      });
      const f = Buffer.concat([
        Buffer.from([compressed ? 0xc2 : 0x82, 127, 0, 0, 0, 0, 0, 4, 0, 0]),
        payload,
      ]);
      for (let i = 0; i < f.length - 1; i++) r.push(f.subarray(i, i + 1));
      // Structural check (deterministic, unlike heap numbers): one stored piece per byte would be
      // 262,144 Buffer objects (~25 MB); staging keeps it to one piece per 16 KiB.
      const internals = r as unknown as { fragments: Buffer[]; frameParts: Buffer[] };
      const pieces = compressed ? internals.frameParts.length : internals.fragments.length;
      expect(pieces).toBeLessThanOrEqual(size / (16 * 1024) + 2);
      r.push(f.subarray(f.length - 1));
      if (compressed) expect(held!.equals(payload)).toBe(true);
      else expect((events[0]![1] as Buffer).equals(payload)).toBe(true);
    });
  }
});

describe('upgrade request validation', () => {
  const valid = {
    method: 'GET',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    headers: {
      host: 'example.test',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    } as Record<string, string>,
  };
  const anyText = fc.string({ maxLength: 40, unit: 'binary' });
  /** One header (or the method) replaced by another plausible or arbitrary value, or removed. */
  const mutation = fc.oneof(
    fc.record({
      field: fc.constant('method'),
      value: fc.oneof(fc.constantFrom('GET', 'get', 'POST', 'HEAD'), anyText),
    }),
    fc.record({
      field: fc.constantFrom('host', 'upgrade', 'connection', 'sec-websocket-version', 'sec-websocket-key'),
      value: fc.oneof(
        fc.constantFrom(
          undefined,
          '',
          'websocket',
          'WebSocket',
          'h2c, websocket',
          'keep-alive, Upgrade',
          'upgrade',
          '13',
          ' 13 ',
          '8',
          'AAAAAAAAAAAAAAAAAAAAAA==',
          'AAAAAAAAAAAAAAAAAAAAAA=',
        ),
        fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64')),
        anyText,
      ),
    }),
  );

  /** RFC 6455 §4.2.1, written independently of the implementation for the fields mutated here. */
  function model(method: string, h: Record<string, string | undefined>): boolean {
    const tokens = (v: string | undefined) => (v ?? '').split(',').map((t) => t.trim().toLowerCase());
    const key = h['sec-websocket-key']?.trim();
    return (
      method === 'GET' &&
      h.host !== undefined &&
      h.host !== '' &&
      tokens(h.upgrade).includes('websocket') &&
      tokens(h.connection).includes('upgrade') &&
      h['sec-websocket-version']?.trim() === '13' &&
      key !== undefined &&
      /^[A-Za-z0-9+/]{22}==$/.test(key) &&
      Buffer.from(key, 'base64').length === 16
    );
  }

  itFuzz('accepts a mutated handshake exactly when RFC 6455 does, and never throws', async () => {
    await fuzz(
      'ws-upgrade-request',
      fc.property(fc.array(mutation, { maxLength: 3 }), (mutations) => {
        let method = valid.method;
        const headers: Record<string, string | undefined> = { ...valid.headers };
        for (const m of mutations) {
          if (m.field === 'method') method = m.value ?? '';
          else if (m.value === undefined) delete headers[m.field];
          else headers[m.field] = m.value;
        }
        const v = validateUpgradeRequest({ ...valid, method, headers: headers as Record<string, string> });
        expect(v.ok).toBe(model(method, headers));
        if (v.ok) expect(computeAcceptKey(v.key)).toMatch(/^[A-Za-z0-9+/]{27}=$/);
        else expect([400, 405, 426]).toContain(v.status);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('payload masking', () => {
  /** RFC 6455 §5.3 byte by byte: the reference the word-at-a-time loop must agree with. */
  function referenceMask(buf: Uint8Array, mask: Uint8Array, offset: number): Buffer {
    const out = Buffer.from(buf);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ mask[(i + offset) & 3]!;
    return out;
  }

  itFuzz('agrees with the byte-by-byte definition for any length, alignment and split', async () => {
    await fuzz(
      'ws-properties-mask',
      fc.property(
        fc.uint8Array({ maxLength: 600, size: 'max' }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat({ max: 7 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (payload, mask, align, cuts) => {
          // Start the payload at every alignment inside a larger buffer, as socket chunks do.
          const backing = Buffer.alloc(payload.length + 16, 0xee);
          const view = backing.subarray(align, align + payload.length);
          view.set(payload);
          // Unmask piece by piece (views, not copies), as payloads arriving in several reads are.
          const points = [...new Set(cuts.map((c) => (view.length === 0 ? 0 : c % view.length)))];
          points.sort((a, b) => a - b);
          let offset = 0;
          for (const p of [...points, view.length]) {
            if (p <= offset) continue;
            applyMask(view.subarray(offset, p), mask, offset);
            offset = p;
          }
          expect(Buffer.from(view)).toEqual(referenceMask(payload, mask, 0));
          // Bytes around the payload are never touched.
          expect(backing.subarray(0, align).every((b) => b === 0xee)).toBe(true);
          expect(backing.subarray(align + payload.length).every((b) => b === 0xee)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
