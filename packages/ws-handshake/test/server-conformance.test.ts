import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocketServer } from '../src/index.js';
import { type ConformanceTarget, echoTarget } from './conformance-target.js';
import { inflatedBytes } from '../src/permessage-deflate.js';
import {
  closePayload,
  echoServer,
  frame,
  INFLATE_CHUNK,
  Op,
  rawClient,
  waitFor,
  zipBomb,
} from './helpers.js';

// Autobahn-style cases, driving hand-crafted frames at our server over real sockets: once over an
// HTTP/1.1 Upgrade, once over RFC 8441 extended CONNECT streams of a real HTTP/2 session.

describe.each(['http/1.1', 'h2'] as const)('over %s', (transport) => {
  let server: WebSocketServer;
  let target: ConformanceTarget;
  beforeAll(async () => {
    target = await echoTarget(transport, { maxPayload: 4 * 1024 * 1024, heartbeatInterval: 0 });
    server = target.server;
  });
  afterAll(async () => {
    await target.close();
  });

  async function echoes(frames: Buffer[], expected: Array<{ opcode: number; payload: Buffer | string }>) {
    const c = await target.open();
    c.write(...frames);
    const got = await c.frames(expected.length);
    for (let i = 0; i < expected.length; i++) {
      const want = expected[i]!;
      expect(got[i]!.opcode).toBe(want.opcode);
      expect(got[i]!.masked).toBe(false);
      expect(got[i]!.payload.equals(Buffer.from(want.payload))).toBe(true);
    }
    c.write(frame({ opcode: Op.close, payload: closePayload(1000) }));
    const { code } = await c.closed();
    expect(code).toBe(1000);
  }

  async function failsWith(frames: Buffer[], code: number, chunked = false) {
    const c = await target.open();
    if (chunked) {
      const all = Buffer.concat(frames);
      for (let i = 0; i < all.length; i++) c.socket.write(all.subarray(i, i + 1));
    } else {
      c.write(...frames);
    }
    const closed = await c.closed();
    expect(closed.code).toBe(code);
    return closed;
  }

  describe('framing (Autobahn 1.x)', () => {
    for (const len of [0, 1, 125, 126, 127, 128, 65535, 65536, 1 << 20]) {
      it(`echoes a ${len}-byte text and binary message`, async () => {
        const text = 'a'.repeat(len);
        const bin = Buffer.alloc(len, 0xfe);
        await echoes(
          [frame({ opcode: Op.text, payload: text }), frame({ opcode: Op.binary, payload: bin })],
          [
            { opcode: Op.text, payload: text },
            { opcode: Op.binary, payload: bin },
          ],
        );
      });
    }

    it('parses frames delivered one byte at a time', async () => {
      const c = await target.open();
      const all = Buffer.concat([
        frame({ opcode: Op.text, payload: 'chopped' }),
        frame({ opcode: Op.binary, payload: Buffer.alloc(300, 3) }),
      ]);
      for (let i = 0; i < all.length; i++) c.socket.write(all.subarray(i, i + 1));
      const got = await c.frames(2);
      expect(got[0]!.payload.toString()).toBe('chopped');
      expect(got[1]!.payload.length).toBe(300);
    });

    it('rejects unmasked client frames with 1002', async () => {
      await failsWith([frame({ opcode: Op.text, payload: 'x', mask: false })], 1002);
    });
  });

  describe('ping and pong (Autobahn 2.x)', () => {
    it('answers pings with identical payloads, including empty and 125 bytes', async () => {
      const p125 = Buffer.alloc(125, 0xfe);
      await echoes(
        [
          frame({ opcode: Op.ping }),
          frame({ opcode: Op.ping, payload: 'Hello, world!' }),
          frame({ opcode: Op.ping, payload: p125 }),
        ],
        [
          { opcode: Op.pong, payload: '' },
          { opcode: Op.pong, payload: 'Hello, world!' },
          { opcode: Op.pong, payload: p125 },
        ],
      );
    });

    it('fails a ping with a 126-byte payload with 1002', async () => {
      await failsWith([frame({ opcode: Op.ping, payload: Buffer.alloc(126) })], 1002);
    });

    it('ignores unsolicited pongs', async () => {
      await echoes(
        [frame({ opcode: Op.pong, payload: 'unsolicited' }), frame({ opcode: Op.text, payload: 'after' })],
        [{ opcode: Op.text, payload: 'after' }],
      );
    });

    it('answers ten pings sent back to back, also when chopped into single bytes', async () => {
      const c = await target.open();
      const pings = Array.from({ length: 10 }, (_, i) => frame({ opcode: Op.ping, payload: `p${i}` }));
      const all = Buffer.concat(pings);
      for (let i = 0; i < all.length; i++) c.socket.write(all.subarray(i, i + 1));
      const got = await c.frames(10);
      expect(got.map((f) => f.payload.toString())).toEqual(pings.map((_, i) => `p${i}`));
    });

    it('fails a fragmented ping with 1002', async () => {
      await failsWith([frame({ opcode: Op.ping, payload: 'x', fin: false })], 1002);
    });
  });

  describe('reserved bits (Autobahn 3.x)', () => {
    for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
      it(`fails a text frame with RSV=${rsv} (no extension) with 1002`, async () => {
        await failsWith([frame({ opcode: Op.text, payload: 'x', rsv })], 1002);
      });
    }
    it('echoes the valid message before failing on a later RSV frame', async () => {
      const c = await target.open();
      c.write(
        frame({ opcode: Op.text, payload: 'ok' }),
        frame({ opcode: Op.text, payload: 'bad', rsv: 2 }),
        frame({ opcode: Op.ping }),
      );
      const closed = await c.closed();
      expect(closed.frames[0]!.payload.toString()).toBe('ok');
      expect(closed.code).toBe(1002);
      expect(closed.frames.some((f) => f.opcode === Op.pong)).toBe(false);
    });
    it('fails a ping and a close with RSV bits', async () => {
      await failsWith([frame({ opcode: Op.ping, rsv: 4 })], 1002);
      await failsWith([frame({ opcode: Op.close, payload: closePayload(1000), rsv: 1 })], 1002);
    });
  });

  describe('opcodes (Autobahn 4.x)', () => {
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`fails reserved opcode 0x${op.toString(16)} with 1002`, async () => {
        await failsWith([frame({ opcode: op, payload: 'reserved' })], 1002);
      });
    }
  });

  describe('fragmentation (Autobahn 5.x)', () => {
    it('reassembles text and binary messages from many fragments', async () => {
      await echoes(
        [
          frame({ opcode: Op.text, payload: 'frag', fin: false }),
          frame({ opcode: Op.cont, payload: 'men', fin: false }),
          frame({ opcode: Op.cont, payload: 'ted' }),
          frame({ opcode: Op.binary, payload: Buffer.from([1]), fin: false }),
          frame({ opcode: Op.cont, payload: Buffer.from([2]) }),
        ],
        [
          { opcode: Op.text, payload: 'fragmented' },
          { opcode: Op.binary, payload: Buffer.from([1, 2]) },
        ],
      );
    });

    it('handles pings and pongs between fragments', async () => {
      await echoes(
        [
          frame({ opcode: Op.text, payload: 'fragment1', fin: false }),
          frame({ opcode: Op.ping, payload: 'ping' }),
          frame({ opcode: Op.pong, payload: 'pong' }),
          frame({ opcode: Op.cont, payload: 'fragment2' }),
        ],
        [
          { opcode: Op.pong, payload: 'ping' },
          { opcode: Op.text, payload: 'fragment1fragment2' },
        ],
      );
    });

    it('reassembles empty fragments into an empty message', async () => {
      await echoes(
        [
          frame({ opcode: Op.text, fin: false }),
          frame({ opcode: Op.cont, fin: false }),
          frame({ opcode: Op.cont }),
        ],
        [{ opcode: Op.text, payload: '' }],
      );
    });

    it('fails a continuation frame without a message with 1002 (fin set and clear)', async () => {
      await failsWith([frame({ opcode: Op.cont, payload: 'x' })], 1002);
      await failsWith([frame({ opcode: Op.cont, payload: 'x', fin: false })], 1002);
    });

    it('fails a new data frame while a fragmented message is open with 1002', async () => {
      await failsWith(
        [frame({ opcode: Op.text, payload: 'a', fin: false }), frame({ opcode: Op.text, payload: 'b' })],
        1002,
      );
    });

    it('fails continuation after a finished message with 1002, after echoing it', async () => {
      const closed = await failsWith(
        [frame({ opcode: Op.text, payload: 'done' }), frame({ opcode: Op.cont, payload: 'x' })],
        1002,
      );
      expect(closed.frames[0]!.payload.toString()).toBe('done');
    });
  });

  const VALID_UTF8 = [
    'Hello-µ@ßöäüàá-UTF-8!!',
    'κόσμε',
    '\u{10ffff}\u{10000}\u{800}\u{7ff}\u{80}\u{7f}\u{ffff}\u{e000}\u{fffd}\u{d7ff}',
  ];
  const INVALID_UTF8 = [
    [
      0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64, 0x69,
      0x74, 0x65, 0x64,
    ],
    [0xc0, 0xaf], // overlong '/'
    [0xe0, 0x80, 0xaf], // overlong
    [0xf0, 0x80, 0x80, 0xaf], // overlong
    [0xed, 0xa0, 0x80], // surrogate U+D800
    [0xed, 0xbf, 0xbf], // surrogate U+DFFF
    [0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
    [0xf5],
    [0xff],
    [0x80],
    [0xce, 0xba, 0xe1], // truncated at the end
    [0xc2, 0x41],
  ];

  describe('UTF-8 handling (Autobahn 6.x)', () => {
    for (const s of VALID_UTF8) {
      it(`echoes valid text ${JSON.stringify(s)} whole and split at every byte`, async () => {
        const bytes = Buffer.from(s);
        const frames = [frame({ opcode: Op.text, payload: bytes })];
        for (let i = 0; i < bytes.length; i++) {
          frames.push(
            frame({
              opcode: i === 0 ? Op.text : Op.cont,
              payload: bytes.subarray(i, i + 1),
              fin: i === bytes.length - 1,
            }),
          );
        }
        await echoes(frames, [
          { opcode: Op.text, payload: bytes },
          { opcode: Op.text, payload: bytes },
        ]);
      });
    }

    INVALID_UTF8.forEach((bytes, idx) => {
      it(`fails invalid UTF-8 sequence #${idx} with 1007, whole, fragmented and chopped`, async () => {
        const payload = Buffer.from(bytes);
        await failsWith([frame({ opcode: Op.text, payload })], 1007);
        const frags = [];
        for (let i = 0; i < payload.length; i++) {
          frags.push(
            frame({
              opcode: i === 0 ? Op.text : Op.cont,
              payload: payload.subarray(i, i + 1),
              fin: i === payload.length - 1,
            }),
          );
        }
        await failsWith(frags, 1007);
        await failsWith([frame({ opcode: Op.text, payload })], 1007, true);
      });
    });

    it('fails fast: an invalid first fragment closes the connection before the message ends', async () => {
      const c = await target.open();
      c.write(
        frame({ opcode: Op.text, payload: Buffer.from([0xce, 0xba, 0xf4, 0x90, 0x80, 0x80]), fin: false }),
      );
      const closed = await c.closed();
      expect(closed.code).toBe(1007);
    });

    it('fails fast inside a single frame whose payload is still arriving', async () => {
      const c = await target.open();
      const f = frame({
        opcode: Op.text,
        payload: Buffer.concat([Buffer.from([0xed, 0xa0, 0x80]), Buffer.alloc(1000, 0x61)]),
      });
      c.socket.write(f.subarray(0, 20)); // header, mask and the bad bytes; the rest never comes
      const closed = await c.closed();
      expect(closed.code).toBe(1007);
    });

    it('validates code points split across fragments', async () => {
      const euro = Buffer.from('€'); // e2 82 ac
      await echoes(
        [
          frame({ opcode: Op.text, payload: euro.subarray(0, 1), fin: false }),
          frame({ opcode: Op.cont, payload: euro.subarray(1, 2), fin: false }),
          frame({ opcode: Op.cont, payload: euro.subarray(2) }),
        ],
        [{ opcode: Op.text, payload: '€' }],
      );
    });

    it('accepts invalid UTF-8 in binary messages', async () => {
      const bytes = Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]);
      await echoes([frame({ opcode: Op.binary, payload: bytes })], [{ opcode: Op.binary, payload: bytes }]);
    });
  });

  describe('close handling (Autobahn 7.x)', () => {
    it('answers a close without payload with an empty close and closes TCP', async () => {
      const c = await target.open();
      c.write(frame({ opcode: Op.close }));
      const closed = await c.closed();
      expect(closed.code).toBe(1005);
      expect(closed.frames.find((f) => f.opcode === Op.close)!.payload.length).toBe(0);
    });

    it('fails a close frame with a 1-byte payload with 1002', async () => {
      await failsWith([frame({ opcode: Op.close, payload: Buffer.from([0x03]) })], 1002);
    });

    it('echoes a close with a 123-byte reason', async () => {
      const c = await target.open();
      c.write(frame({ opcode: Op.close, payload: closePayload(1000, 'r'.repeat(123)) }));
      expect((await c.closed()).code).toBe(1000);
    });

    it('fails a close frame of 126 bytes with 1002', async () => {
      await failsWith([frame({ opcode: Op.close, payload: closePayload(1000, 'r'.repeat(124)) })], 1002);
    });

    it('fails a close reason with invalid UTF-8 with 1007', async () => {
      await failsWith(
        [
          frame({
            opcode: Op.close,
            payload: closePayload(1000, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80])),
          }),
        ],
        1007,
      );
    });

    for (const code of [
      1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
    ]) {
      it(`echoes valid close code ${code}`, async () => {
        const c = await target.open();
        c.write(frame({ opcode: Op.close, payload: closePayload(code) }));
        expect((await c.closed()).code).toBe(code);
      });
    }

    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      it(`fails invalid close code ${code} with 1002`, async () => {
        await failsWith([frame({ opcode: Op.close, payload: closePayload(code) })], 1002);
      });
    }

    it('ignores frames after the close frame and sends nothing more', async () => {
      const c = await target.open();
      c.write(
        frame({ opcode: Op.close, payload: closePayload(1000) }),
        frame({ opcode: Op.text, payload: 'after close' }),
        frame({ opcode: Op.ping, payload: 'after close' }),
      );
      const closed = await c.closed();
      expect(closed.frames.map((f) => f.opcode)).toEqual([Op.close]);
    });

    it('handles a close in the middle of a fragmented message', async () => {
      const c = await target.open();
      c.write(
        frame({ opcode: Op.text, payload: 'part', fin: false }),
        frame({ opcode: Op.close, payload: closePayload(1000) }),
      );
      const closed = await c.closed();
      expect(closed.frames.map((f) => f.opcode)).toEqual([Op.close]);
      expect(closed.code).toBe(1000);
    });

    it('reports the peer code in the close event of the server connection', async () => {
      const c = await target.open();
      await waitFor(() => server.clients.size > 0);
      const events: Array<[number, string]> = [];
      for (const ws of server.clients) ws.once('close', (code, reason) => events.push([code, reason]));
      c.write(frame({ opcode: Op.close, payload: closePayload(4321, 'bye') }));
      await c.closed();
      await waitFor(() => events.some(([code]) => code === 4321));
    });
  });

  describe('limits (Autobahn 9.x)', () => {
    it('fails with 1009 from the header alone, before any payload is sent', async () => {
      const c = await target.open();
      const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, 3, 4]); // 16 MiB, masked
      c.socket.write(header);
      expect((await c.closed()).code).toBe(1009);
    });

    it('fails with 1009 when fragments add up beyond maxPayload', async () => {
      const c = await target.open();
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      c.write(frame({ opcode: Op.binary, payload: chunk, fin: false }));
      for (let i = 0; i < 3; i++) c.write(frame({ opcode: Op.cont, payload: chunk, fin: false }));
      c.write(frame({ opcode: Op.cont, payload: chunk, fin: false }));
      expect((await c.closed()).code).toBe(1009);
    });

    it('fails a 64-bit length with the most significant bit set', async () => {
      const c = await target.open();
      c.socket.write(Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]));
      expect((await c.closed()).code).toBe(1009);
    });

    it('echoes a 4 MiB message in 64 KiB fragments (limit is inclusive)', async () => {
      const c = await target.open();
      const total = 4 * 1024 * 1024;
      const part = Buffer.alloc(64 * 1024, 0x62);
      for (let off = 0; off < total; off += part.length) {
        c.write(
          frame({ opcode: off === 0 ? Op.binary : Op.cont, payload: part, fin: off + part.length === total }),
        );
      }
      const [echo] = await c.frames(1, 20_000);
      expect(echo!.payload.length).toBe(total);
    });
  });

  describe('permessage-deflate (Autobahn 12.x/13.x) on the server', () => {
    let dtarget: ConformanceTarget;
    beforeAll(async () => {
      dtarget = await echoTarget(transport, {
        perMessageDeflate: { threshold: 0 },
        maxPayload: 64 * 1024,
        heartbeatInterval: 0,
      });
    });
    afterAll(async () => {
      await dtarget.close();
    });

    function compress(data: Buffer | string): Buffer {
      const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: 2 });
      return out.subarray(0, out.length - 4);
    }

    it('negotiates and echoes compressed messages, whole and fragmented', async () => {
      const c = await dtarget.open({
        headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
      });
      expect(c.response).toMatch(/sec-websocket-extensions: permessage-deflate/i);
      const body = compress('Hello compressed world '.repeat(20));
      c.write(frame({ opcode: Op.text, payload: body, rsv: 4 }));
      c.write(frame({ opcode: Op.text, payload: body.subarray(0, 5), rsv: 4, fin: false }));
      c.write(frame({ opcode: Op.cont, payload: body.subarray(5) }));
      c.write(frame({ opcode: Op.text, payload: 'plain' }));
      const got = await c.frames(3);
      const { inflateRawSync } = await import('node:zlib');
      // The server keeps its compression context between messages: inflate them as one stream.
      const trailer = Buffer.from([0, 0, 0xff, 0xff]);
      expect(got[0]!.rsv).toBe(4);
      expect(got[1]!.rsv).toBe(4);
      // threshold 0: even the reply to the uncompressed 'plain' is compressed.
      const stream = Buffer.concat(got.slice(0, 3).flatMap((f) => [f.payload, trailer]));
      const text = inflateRawSync(stream, { finishFlush: 2 }).toString();
      expect(text).toBe('Hello compressed world '.repeat(40) + 'plain');
    });

    it('declines offers with unknown, duplicate or invalid params and accepts the next valid offer', async () => {
      for (const bad of [
        'permessage-deflate; foo=1',
        'permessage-deflate; server_max_window_bits=7',
        'permessage-deflate; server_max_window_bits=16',
        'permessage-deflate; server_max_window_bits=08',
        'permessage-deflate; server_max_window_bits',
        'permessage-deflate; client_max_window_bits=1.5',
        'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
        'permessage-deflate; server_no_context_takeover=1',
      ]) {
        const c = await dtarget.open({ headers: { 'Sec-WebSocket-Extensions': bad } });
        expect(c.response).not.toMatch(/sec-websocket-extensions/i);
        c.socket.destroy();
      }
      const c = await dtarget.open({
        headers: {
          'Sec-WebSocket-Extensions':
            'permessage-deflate; foo, permessage-deflate; server_max_window_bits=10',
        },
      });
      expect(c.response).toMatch(/sec-websocket-extensions: permessage-deflate; server_max_window_bits=10/i);
      c.socket.destroy();
    });

    it('answers 400 to a malformed extensions header', async () => {
      const c = await dtarget.open({
        headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; ="x"' },
        expectStatus: 400,
      });
      c.socket.destroy();
    });

    it('honours server_no_context_takeover and all window sizes', async () => {
      for (let bits = 8; bits <= 15; bits++) {
        const c = await dtarget.open({
          headers: {
            'Sec-WebSocket-Extensions': `permessage-deflate; server_no_context_takeover; server_max_window_bits=${bits}`,
          },
        });
        expect(c.response).toContain(`server_max_window_bits=${bits}`);
        const body = compress('repeat repeat repeat');
        c.write(
          frame({ opcode: Op.text, payload: body, rsv: 4 }),
          frame({ opcode: Op.text, payload: body, rsv: 4 }),
        );
        const got = await c.frames(2);
        // Without context takeover both replies are compressed identically.
        expect(got[0]!.payload.equals(got[1]!.payload)).toBe(true);
        c.socket.destroy();
      }
    });

    it('fails RSV1 on a continuation frame with 1002', async () => {
      const c = await dtarget.open({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
      c.write(
        frame({ opcode: Op.text, payload: compress('ab'), rsv: 4, fin: false }),
        frame({ opcode: Op.cont, payload: compress('c'), rsv: 4 }),
      );
      expect((await c.closed()).code).toBe(1002);
    });

    it('fails corrupt compressed data with 1007', async () => {
      const c = await dtarget.open({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
      c.write(frame({ opcode: Op.binary, payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), rsv: 4 }));
      expect((await c.closed()).code).toBe(1007);
    });

    it('stops a zip bomb at maxPayload with 1009', async () => {
      const c = await dtarget.open({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
      const bomb = compress(Buffer.alloc(50 * 1024 * 1024)); // ~50 KiB on the wire, 50 MiB inflated
      expect(bomb.length).toBeLessThan(64 * 1024);
      // zlib's own output count, not process memory: at most one inflate chunk past maxPayload.
      const before = inflatedBytes.total;
      c.write(frame({ opcode: Op.binary, payload: bomb, rsv: 4 }));
      expect((await c.closed()).code).toBe(1009);
      expect(inflatedBytes.total - before).toBeLessThanOrEqual(64 * 1024 + INFLATE_CHUNK);
    });

    it('fails invalid UTF-8 inside a compressed text message with 1007', async () => {
      const c = await dtarget.open({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
      c.write(frame({ opcode: Op.text, payload: compress(Buffer.from([0x61, 0xed, 0xa0, 0x80])), rsv: 4 }));
      expect((await c.closed()).code).toBe(1007);
    });
  });
});

describe('permessage-deflate bomb', () => {
  it('stops a 1 GiB zip bomb at maxPayload with 1009, inflating at most one zlib chunk more', async () => {
    // ~1 MiB on the wire, 1 GiB inflated: the wire size fits this server's maxPayload, so only the
    // inflate guard can stop it. The proof is zlib's own output count, not process memory.
    const maxPayload = 2 * 1024 * 1024;
    const { server, port } = await echoServer({
      perMessageDeflate: { threshold: 0 },
      maxPayload,
      heartbeatInterval: 0,
    });
    try {
      const c = await rawClient(port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
      const bomb = zipBomb(1024);
      expect(bomb.length).toBeLessThan(maxPayload);
      const before = inflatedBytes.total;
      c.write(frame({ opcode: Op.binary, payload: bomb, rsv: 4 }));
      expect((await c.closed()).code).toBe(1009);
      const inflated = inflatedBytes.total - before;
      expect(inflated).toBeGreaterThan(maxPayload);
      expect(inflated).toBeLessThanOrEqual(maxPayload + INFLATE_CHUNK);
    } finally {
      await server.close();
    }
  });
});
