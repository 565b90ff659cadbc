import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WS from 'ws';
import {
  type Child,
  closeBody,
  deflateMessage,
  encode,
  ensureBuilt,
  Op,
  Peer,
  StreamInflater,
  sleep,
  startEchoServer,
  until,
  WS_ECHO_SERVER,
} from './audit-helpers.js';

/*
 * Independent audit of `examples/echo-server.mjs` as a conformance suite of the Autobahn
 * TestSuite kind sees it: a real child process, raw frames over TCP, and for every case the
 * exact outcome (echo content, close code, who closes TCP). Case ids follow Autobahn's
 * numbering so a report maps onto its sections.
 */

const procs: Child[] = [];
let plain = 0;
let deflate = 0;

beforeAll(async () => {
  ensureBuilt();
  const a = await startEchoServer(['examples/echo-server.mjs', '--port', '0']);
  const b = await startEchoServer(['examples/echo-server.mjs', '--port', '0', '--deflate']);
  procs.push(a.proc, b.proc);
  plain = a.port;
  deflate = b.port;
}, 30_000);

let maxDropMs = 0;
let cleanCloses = 0;

afterAll(() => {
  for (const p of procs) p.kill();
  console.log(
    `${cleanCloses} clean closes; slowest TCP drop after the server's close frame: ${maxDropMs} ms`,
  );
});

const text = (s: string | Buffer, o?: Parameters<typeof encode>[2]) => encode(Op.text, s, o);
const binary = (b: Buffer, o?: Parameters<typeof encode>[2]) => encode(Op.binary, b, o);

/** A passing case ends with our close 1000 echoed and the server dropping TCP first. */
async function closesCleanly(p: Peer): Promise<void> {
  const { code, serverDropped, dropMs } = await p.closeNormally();
  maxDropMs = Math.max(maxDropMs, dropMs);
  cleanCloses++;
  expect(code).toBe(1000);
  expect(serverDropped).toBe(true);
  // A FIN, not a reset: a reset can destroy the close frame still in flight.
  expect(p.reset).toBe(false);
}

/** A failing case: the server sends close `code` and then drops TCP itself. */
async function failsWith(p: Peer, code: number): Promise<void> {
  const r = await p.expectFailure();
  expect(r.code).toBe(code);
  expect(r.serverDropped).toBe(true);
  expect(p.reset).toBe(false);
}

function dataMessages(p: Peer): Array<{ opcode: number; data: Buffer }> {
  return p.messages();
}

describe('1 framing', () => {
  for (const [id, len, chop] of [
    ['1.1.1', 0, 0],
    ['1.1.2', 125, 0],
    ['1.1.3', 126, 0],
    ['1.1.4', 127, 0],
    ['1.1.5', 128, 0],
    ['1.1.6', 65535, 0],
    ['1.1.7', 65536, 0],
    ['1.1.8', 65536, 997],
  ] as const) {
    it(`${id} / 1.2.x: echoes text and binary of ${len} bytes${chop ? ` chopped into ${chop}-byte writes` : ''}`, async () => {
      const p = await Peer.open(plain);
      const t = Buffer.alloc(len, '*');
      const b = Buffer.alloc(len, 0xfe);
      const bytes = Buffer.concat([text(t), binary(b)]);
      if (chop) await p.sendChopped(bytes, chop);
      else p.send(bytes);
      await p.waitMessages(2);
      const m = dataMessages(p);
      expect(m.map((x) => x.opcode)).toEqual([Op.text, Op.binary]);
      expect(m[0]!.data.equals(t)).toBe(true);
      expect(m[1]!.data.equals(b)).toBe(true);
      expect(p.frames.every((f) => !f.masked)).toBe(true);
      await closesCleanly(p);
    });
  }
});

describe('handshake edge', () => {
  it('frames sent in the same TCP write as the upgrade request are not lost', async () => {
    const p = await Peer.open(plain, {}, '/', Buffer.concat([text('early'), encode(Op.ping, 'early ping')]));
    await until(() => p.frames.length >= 2, 5000, 'echo and pong');
    expect(p.frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [Op.text, 'early'],
      [Op.pong, 'early ping'],
    ]);
    await closesCleanly(p);
  });
});

describe('handshake as Autobahn sends it', () => {
  it('accepts "Upgrade: WebSocket", extra headers and three permessage-deflate offers in one header', async () => {
    const p = await Peer.open(
      deflate,
      {
        'User-Agent': 'AutobahnTestSuite/0.8.2-0.10.9',
        Pragma: 'no-cache',
        'Cache-Control': 'no-cache',
        'Sec-WebSocket-Extensions':
          'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, ' +
          'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, ' +
          'permessage-deflate; client_no_context_takeover; client_max_window_bits',
      },
      '/',
      null,
      'WebSocket',
    );
    const params = extParams(p.extensions);
    expect(params.server_max_window_bits).toBe('8');
    expect(params.server_no_context_takeover).toBe(true);
    await closesCleanly(p);
  });

  it('1.1.7 with the 64-bit length header dripped one byte per write', async () => {
    const p = await Peer.open(plain);
    const payload = Buffer.alloc(65536, '*');
    const f = text(payload);
    await p.sendChopped(f.subarray(0, 20), 1);
    p.send(f.subarray(20));
    await p.waitMessages(1);
    expect(dataMessages(p)[0]!.data.equals(payload)).toBe(true);
    await closesCleanly(p);
  });
});

describe('2 ping/pong', () => {
  it('2.1-2.4: pong echoes the ping payload exactly (empty, text, binary, 125 bytes)', async () => {
    const payloads = [
      Buffer.alloc(0),
      Buffer.from('Hello, world!'),
      Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
      Buffer.alloc(125, 0xfe),
    ];
    for (const payload of payloads) {
      const p = await Peer.open(plain);
      p.send(encode(Op.ping, payload));
      await until(() => p.frames.length >= 1, 5000, 'pong');
      expect(p.frames[0]!.opcode).toBe(Op.pong);
      expect(p.frames[0]!.payload.equals(payload)).toBe(true);
      await closesCleanly(p);
    }
  });

  it('2.5: a ping with a 126-byte payload fails with 1002 and is not answered', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.ping, Buffer.alloc(126, 0xfe)));
    await failsWith(p, 1002);
    expect(p.frames.some((f) => f.opcode === Op.pong)).toBe(false);
  });

  it('2.6: a 125-byte ping sent one byte per write is answered exactly', async () => {
    const p = await Peer.open(plain);
    const payload = randomBytes(125);
    await p.sendChopped(encode(Op.ping, payload), 1);
    await until(() => p.frames.length >= 1, 5000, 'pong');
    expect(p.frames[0]!.payload.equals(payload)).toBe(true);
    await closesCleanly(p);
  });

  it('2.7-2.9: unsolicited pongs are ignored; a later ping gets exactly one pong', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.pong), encode(Op.pong, 'unsolicited pong payload'), encode(Op.pong, 'ping payload'));
    p.send(encode(Op.ping, 'ping payload'));
    await until(() => p.frames.length >= 1, 5000, 'pong');
    await sleep(100);
    expect(p.frames.length).toBe(1);
    expect(p.frames[0]!.opcode).toBe(Op.pong);
    expect(p.frames[0]!.payload.toString()).toBe('ping payload');
    await closesCleanly(p);
  });

  for (const chop of [0, 1]) {
    it(`2.${chop ? 11 : 10}: ten pings${chop ? ' chopped into single bytes' : ''} get ten pongs in order`, async () => {
      const p = await Peer.open(plain);
      const bytes = Buffer.concat(Array.from({ length: 10 }, (_, i) => encode(Op.ping, `payload-${i}`)));
      if (chop) await p.sendChopped(bytes, 1);
      else p.send(bytes);
      await until(() => p.frames.length >= 10, 5000, 'ten pongs');
      expect(p.frames.map((f) => f.payload.toString())).toEqual(
        Array.from({ length: 10 }, (_, i) => `payload-${i}`),
      );
      await closesCleanly(p);
    });
  }
});

describe('3 reserved bits', () => {
  it('3.1: text with RSV1 and no extension fails with 1002', async () => {
    const p = await Peer.open(plain);
    p.send(text('Hello, world!', { rsv: 4 }));
    await failsWith(p, 1002);
  });

  for (const [id, rsv, mode] of [
    ['3.2', 2, 'frames'],
    ['3.3', 3, 'one write'],
    ['3.4', 4, 'chopped'],
  ] as const) {
    it(`${id}: text, then text with RSV=${rsv}, then ping (${mode}): echo, 1002, no pong`, async () => {
      const p = await Peer.open(plain);
      const bytes = [text('Hello, world!'), text('Hello, world!', { rsv }), encode(Op.ping)];
      if (mode === 'frames') p.send(...bytes);
      else if (mode === 'one write') p.send(Buffer.concat(bytes));
      else await p.sendChopped(Buffer.concat(bytes), 1, 1);
      await failsWith(p, 1002);
      const m = dataMessages(p);
      expect(m.length).toBe(1);
      expect(m[0]!.data.toString()).toBe('Hello, world!');
      expect(p.frames.some((f) => f.opcode === Op.pong)).toBe(false);
    });
  }

  for (const [id, frame] of [
    ['3.5 binary RSV=5', binary(Buffer.from([0, 1, 2, 3]), { rsv: 5 })],
    ['3.6 ping RSV=6', encode(Op.ping, 'x', { rsv: 6 })],
    ['3.7 close RSV=7', encode(Op.close, closeBody(1000), { rsv: 7 })],
  ] as const) {
    it(`${id} fails with 1002`, async () => {
      const p = await Peer.open(plain);
      p.send(frame);
      await failsWith(p, 1002);
      expect(p.frames.filter((f) => f.opcode !== Op.close).length).toBe(0);
    });
  }

  it('RSV1 on a ping fails with 1002 even with permessage-deflate negotiated', async () => {
    const p = await Peer.open(deflate, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    expect(p.extensions).toMatch(/^permessage-deflate/);
    p.send(encode(Op.ping, 'x', { rsv: 4 }));
    await failsWith(p, 1002);
  });
});

describe('4 opcodes', () => {
  for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    it(`4.x opcode ${op}: text echoed, then the reserved opcode fails with 1002 and the ping is ignored`, async () => {
      const p = await Peer.open(plain);
      p.send(text('Hello, world!'), encode(op, op % 2 ? 'reserved payload' : ''), encode(Op.ping));
      await failsWith(p, 1002);
      const m = dataMessages(p);
      expect(m.map((x) => x.data.toString())).toEqual(['Hello, world!']);
      expect(p.frames.some((f) => f.opcode === Op.pong)).toBe(false);
    });
  }
});

describe('5 fragmentation', () => {
  it('5.1/5.2: fragmented ping and pong fail with 1002', async () => {
    for (const op of [Op.ping, Op.pong]) {
      const p = await Peer.open(plain);
      p.send(encode(op, 'fragment1', { fin: false }), encode(Op.cont, 'fragment2'));
      await failsWith(p, 1002);
    }
  });

  for (const [id, mode] of [
    ['5.3/5.6', 'frames'],
    ['5.4/5.7', 'chopped'],
    ['5.5/5.8', 'chopped with delays'],
  ] as const) {
    it(`${id}: two fragments, with a ping between them (${mode})`, async () => {
      for (const withPing of [false, true]) {
        const p = await Peer.open(plain);
        const frames = [
          text('fragment1', { fin: false }),
          ...(withPing ? [encode(Op.ping, 'pongme!')] : []),
          encode(Op.cont, 'fragment2'),
        ];
        if (mode === 'frames') p.send(...frames);
        else await p.sendChopped(Buffer.concat(frames), 1, mode === 'chopped' ? 0 : 1);
        await p.waitMessages(1);
        if (withPing) {
          expect(p.frames[0]!.opcode).toBe(Op.pong);
          expect(p.frames[0]!.payload.toString()).toBe('pongme!');
        }
        expect(dataMessages(p).map((m) => m.data.toString())).toEqual(['fragment1fragment2']);
        await closesCleanly(p);
      }
    });
  }

  for (const [id, frames] of [
    ['5.9-5.11 continuation fin=1 with nothing to continue', [encode(Op.cont, 'non-continuation payload')]],
    ['5.12-5.14 continuation fin=0 with nothing to continue', [encode(Op.cont, 'x', { fin: false })]],
    [
      '5.16 two rounds of stray continuation + fragmented text',
      [
        encode(Op.cont, 'fragment1', { fin: false }),
        text('fragment2', { fin: false }),
        encode(Op.cont, 'fragment3'),
      ],
    ],
    ['5.18 text fin=0 followed by a new text frame', [text('fragment1', { fin: false }), text('fragment2')]],
  ] as const) {
    it(`${id}: 1002, nothing echoed`, async () => {
      const p = await Peer.open(plain);
      p.send(...frames);
      await failsWith(p, 1002);
      expect(dataMessages(p)).toEqual([]);
    });
  }

  it('5.15: a finished fragmented message is echoed, the stray continuation after it fails with 1002', async () => {
    const p = await Peer.open(plain);
    p.send(
      text('fragment1', { fin: false }),
      encode(Op.cont, 'fragment2'),
      encode(Op.cont, 'fragment3', { fin: false }),
      text('fragment4'),
    );
    await failsWith(p, 1002);
    expect(dataMessages(p).map((m) => m.data.toString())).toEqual(['fragment1fragment2']);
  });

  for (const chop of [false, true]) {
    it(`5.${chop ? 20 : 19}: five fragments with pings and pauses in between${chop ? ', chopped' : ''}`, async () => {
      const p = await Peer.open(plain);
      const steps: Buffer[][] = [
        [
          text('fragment1', { fin: false }),
          encode(Op.cont, 'fragment2', { fin: false }),
          encode(Op.ping, 'pongme 1!'),
        ],
        [
          encode(Op.cont, 'fragment3', { fin: false }),
          encode(Op.cont, 'fragment4', { fin: false }),
          encode(Op.ping, 'pongme 2!'),
        ],
        [encode(Op.cont, 'fragment5')],
      ];
      for (const step of steps) {
        const bytes = Buffer.concat(step);
        if (chop) await p.sendChopped(bytes, 1);
        else p.send(bytes);
        await sleep(50);
      }
      await p.waitMessages(1);
      // The pongs left while the message was still open.
      expect(p.frames.map((f) => f.opcode)).toEqual([Op.pong, Op.pong, Op.text]);
      expect(p.frames[0]!.payload.toString()).toBe('pongme 1!');
      expect(p.frames[2]!.payload.toString()).toBe('fragment1fragment2fragment3fragment4fragment5');
      await closesCleanly(p);
    });
  }
});

describe('6 UTF-8', () => {
  it('6.1: empty text messages, whole and as empty fragments', async () => {
    const p = await Peer.open(plain);
    p.send(text(''));
    p.send(text('', { fin: false }), encode(Op.cont, '', { fin: false }), encode(Op.cont, ''));
    p.send(
      text('', { fin: false }),
      encode(Op.cont, 'middle frame payload', { fin: false }),
      encode(Op.cont, ''),
    );
    await p.waitMessages(3);
    expect(dataMessages(p).map((m) => m.data.toString())).toEqual(['', '', 'middle frame payload']);
    await closesCleanly(p);
  });

  const valid: string[] = [
    'Hello-µ@ßöäüàá-UTF-8!!',
    'κόσμε',
    'ed9fbf', // U+D7FF
    'ee8080', // U+E000
    'efbfbd', // U+FFFD
    'f48fbfbf', // U+10FFFF
    'efbfbe', // U+FFFE (noncharacters are valid UTF-8)
    'efbfbf', // U+FFFF
    'f0908080', // U+10000
    'c280', // U+0080
    'e0a080', // U+0800
    '7f',
    '00',
  ];
  const invalid: string[] = [
    'cebae1bdb9cf83cebcceb5eda080656469746564', // κόσμε + surrogate + "edited" (6.3.1)
    'f4908080', // > U+10FFFF
    'f7bfbfbf',
    'f88880808080'.slice(0, 10), // 5-byte form
    'fc8480808080',
    '80',
    'bf',
    '80bf80bf',
    'c0af', // overlong '/'
    'e080af',
    'f08080af',
    'c1bf', // maximum overlongs
    'e09fbf',
    'f08fbfbf',
    'eda080', // surrogates
    'edadbf',
    'edbfbf',
    'eda080edb080',
    'c0',
    'e080',
    'f08080',
    'dfdf', // lead followed by lead
    'fe',
    'ff',
    'fefeffff',
    'cebae1bdb9cf83cebcceb5f4', // incomplete code point at the very end
  ];
  const bytesOf = (s: string) =>
    /^[0-9a-f]+$/.test(s) && s.length % 2 === 0 ? Buffer.from(s, 'hex') : Buffer.from(s);

  it('6.2/6.5-6.23 valid: echoed whole, as one frame per byte, and chopped per byte over TCP', async () => {
    for (const s of valid) {
      const payload = bytesOf(s);
      const p = await Peer.open(plain);
      p.send(text(payload));
      const perByte = [...payload].map((b, i, all) =>
        encode(i === 0 ? Op.text : Op.cont, Buffer.from([b]), { fin: i === all.length - 1 }),
      );
      p.send(...perByte);
      await p.sendChopped(text(payload), 1);
      await p.waitMessages(3);
      for (const m of dataMessages(p)) {
        expect(m.opcode).toBe(Op.text);
        expect(m.data.toString('hex')).toBe(payload.toString('hex'));
      }
      await closesCleanly(p);
    }
  });

  it('6.3/6.5-6.23 invalid: 1007 whole, as one frame per byte, and chopped per byte over TCP', async () => {
    for (const s of invalid) {
      const payload = bytesOf(s);
      const perByte = [...payload].map((b, i, all) =>
        encode(i === 0 ? Op.text : Op.cont, Buffer.from([b]), { fin: i === all.length - 1 }),
      );
      for (const mode of ['whole', 'per byte', 'chopped']) {
        const p = await Peer.open(plain);
        if (mode === 'whole') p.send(text(payload));
        else if (mode === 'per byte') p.send(...perByte);
        else await p.sendChopped(text(payload), 1);
        const r = await p.expectFailure();
        expect({ s, mode, code: r.code }).toEqual({ s, mode, code: 1007 });
        expect(r.serverDropped).toBe(true);
        expect(dataMessages(p)).toEqual([]);
      }
    }
  });

  // 6.4.x: Autobahn sends the invalid part, pauses, then the rest; "strict" means the close
  // arrived before the rest was sent.
  const kosme = Buffer.from('κόσμε');
  for (const [id, parts] of [
    [
      '6.4.1 invalid second fragment',
      [text(kosme, { fin: false }), encode(Op.cont, Buffer.from('f4908080', 'hex'), { fin: false })],
    ],
    [
      '6.4.2 invalid byte right after a lead byte that ended the first fragment',
      [
        text(Buffer.concat([kosme, Buffer.from([0xf4])]), { fin: false }),
        encode(Op.cont, Buffer.from('90', 'hex'), { fin: false }),
      ],
    ],
  ] as const) {
    it(`${id}: fails fast with 1007 before the message ends`, async () => {
      const p = await Peer.open(plain);
      p.send(...parts);
      const code = await p.waitClose(5000);
      expect(code).toBe(1007);
      p.send(encode(Op.cont, 'edited'));
      await p.expectFailure();
      expect(p.reset).toBe(false);
    });
  }

  for (const [id, invalidPart] of [
    ['6.4.3', 'f4908080'],
    ['6.4.4', 'f490'],
  ] as const) {
    it(`${id}: single frame whose payload is still arriving fails fast with 1007`, async () => {
      const p = await Peer.open(plain);
      const payload = Buffer.concat([kosme, Buffer.from(invalidPart, 'hex'), Buffer.from('edited')]);
      const f = text(payload);
      const headerAndValid = f.length - payload.length + kosme.length;
      p.send(f.subarray(0, headerAndValid));
      await sleep(20);
      p.send(f.subarray(headerAndValid, headerAndValid + invalidPart.length / 2));
      const code = await p.waitClose(5000);
      expect(code).toBe(1007);
      p.send(f.subarray(headerAndValid + invalidPart.length / 2));
      await p.expectFailure();
      expect(p.reset).toBe(false);
    });
  }
});

describe('7 close handling', () => {
  it('7.1.1: echo, then close 1000 both ways, server drops TCP', async () => {
    const p = await Peer.open(plain);
    p.send(text('Hello World'));
    await p.waitMessages(1);
    await closesCleanly(p);
  });

  it('7.1.2-7.1.4: after a close, a second close, a ping and a text get nothing', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.close, closeBody(1000)), encode(Op.close, closeBody(1000)));
    p.send(encode(Op.ping, 'Hello World'), text('Hello World'));
    await until(() => p.ended, 5000, 'server TCP close');
    expect(p.serverClosedFirst).toBe(true);
    expect(p.frames.map((f) => f.opcode)).toEqual([Op.close]);
    expect(p.closeCode()).toBe(1000);
  });

  it('a close sent together with the client FIN is still answered, then TCP closes', async () => {
    const p = await Peer.open(plain);
    p.weEnded = true;
    p.socket.end(encode(Op.close, closeBody(1001)));
    await until(() => p.ended && p.closeFrame() !== undefined, 5000, 'close reply and TCP close');
    expect(p.closeCode()).toBe(1001);
    expect(p.reset).toBe(false);
  });

  it('7.1.5: a close in the middle of a fragmented message ends it; the continuation is ignored', async () => {
    const p = await Peer.open(plain);
    p.send(
      text('fragment1', { fin: false }),
      encode(Op.close, closeBody(1000)),
      encode(Op.cont, 'fragment2'),
    );
    await until(() => p.ended, 5000, 'server TCP close');
    expect(p.frames.map((f) => f.opcode)).toEqual([Op.close]);
    expect(p.serverClosedFirst).toBe(true);
  });

  it('7.1.6 (informational): 256 KiB text, a small text and a close sent back to back are all handled', async () => {
    const p = await Peer.open(plain);
    const big = Buffer.from('BAsd7&jh23'.repeat(26214));
    p.send(text(big), text('Hello World!'), encode(Op.close, closeBody(1000)));
    await until(() => p.ended, 10_000, 'server TCP close');
    const m = dataMessages(p);
    // Both echoes precede the close reply: nothing the server accepted is dropped.
    expect(m.map((x) => x.data.length)).toEqual([big.length, 12]);
    expect(p.frames.at(-1)!.opcode).toBe(Op.close);
  });

  it('7.3.1: an empty close is answered (no code or 1000) and TCP dropped by the server', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.close));
    await until(() => p.ended, 5000, 'server TCP close');
    expect([1000, 1005]).toContain(p.closeCode());
    expect(p.serverClosedFirst).toBe(true);
  });

  it('7.3.2: a 1-byte close payload fails with 1002', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.close, Buffer.from([0x03])));
    await failsWith(p, 1002);
  });

  it('7.3.3-7.3.5: close 1000 with no reason, a short reason and a 123-byte reason is echoed', async () => {
    for (const reason of ['', 'Hello World!', '*'.repeat(123)]) {
      const p = await Peer.open(plain);
      p.send(encode(Op.close, closeBody(1000, reason)));
      await until(() => p.ended, 5000, 'server TCP close');
      expect(p.closeCode()).toBe(1000);
      expect(p.serverClosedFirst).toBe(true);
    }
  });

  it('7.3.6: a close with a 124-byte reason (126-byte payload) fails with 1002', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.close, closeBody(1000, '*'.repeat(124))));
    await failsWith(p, 1002);
  });

  it('7.5.1: a close reason with invalid UTF-8 fails with 1007', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.close, closeBody(1000, Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex'))));
    await failsWith(p, 1007);
  });

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    it(`7.7.x: valid close code ${code} is echoed`, async () => {
      const p = await Peer.open(plain);
      p.send(encode(Op.close, closeBody(code)));
      await until(() => p.ended, 5000, 'server TCP close');
      expect(p.closeCode()).toBe(code);
      expect(p.serverClosedFirst).toBe(true);
    });
  }

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`7.9.x/7.13.x: invalid close code ${code} fails with 1002`, async () => {
      const p = await Peer.open(plain);
      p.send(encode(Op.close, closeBody(code)));
      await failsWith(p, 1002);
    });
  }
});

describe('10 autofragmentation', () => {
  it('10.1.1: 64 KiB text sent as 1300-byte frames is echoed', async () => {
    const p = await Peer.open(plain);
    const payload = Buffer.from('*'.repeat(65536));
    const frames: Buffer[] = [];
    for (let i = 0; i < payload.length; i += 1300) {
      frames.push(
        encode(i === 0 ? Op.text : Op.cont, payload.subarray(i, i + 1300), {
          fin: i + 1300 >= payload.length,
        }),
      );
    }
    p.send(Buffer.concat(frames));
    await p.waitMessages(1);
    expect(dataMessages(p)[0]!.data.equals(payload)).toBe(true);
    await closesCleanly(p);
  });
});

// ---------------------------------------------------------------- 12/13 permessage-deflate

function extParams(ext: string): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const part of ext.split(';').slice(1)) {
    const [k, v] = part.trim().split('=');
    out[k!.trim()] = v === undefined ? true : v.trim();
  }
  return out;
}

// Text with repetitions at short and long distances, like the prose Autobahn compresses.
function sampleText(len: number, seed: number): Buffer {
  const words = ['websocket', 'frame', 'κόσμε', 'deflate', 'window', 'context', 'autobahn', '🙂', 'x'];
  const parts: string[] = [];
  let bytes = 0;
  let i = seed;
  while (bytes < len) {
    i = (i * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[i % words.length]}${i % 7 === 0 ? '\n' : ' '}`;
    parts.push(w);
    bytes += Buffer.byteLength(w);
  }
  const b = Buffer.from(parts.join(''));
  // Cut at a character boundary.
  let end = len;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

describe('12/13 permessage-deflate negotiation (raw offers)', () => {
  const cases: Array<[offer: string, expected: Record<string, string | true> | null]> = [
    ['permessage-deflate', {}],
    ['permessage-deflate; client_max_window_bits', {}],
    [
      'permessage-deflate; client_no_context_takeover; client_max_window_bits',
      { client_no_context_takeover: true },
    ],
    ['permessage-deflate; server_no_context_takeover', { server_no_context_takeover: true }],
    ['permessage-deflate; client_max_window_bits=10', { client_max_window_bits: '10' }],
    ...[8, 9, 10, 11, 12, 13, 14, 15].map(
      (n) =>
        [
          `permessage-deflate; client_max_window_bits; server_max_window_bits=${n}`,
          { server_max_window_bits: String(n) },
        ] as [string, Record<string, string | true>],
    ),
    ['permessage-deflate; server_max_window_bits=7', null],
    ['permessage-deflate; server_max_window_bits=16', null],
    ['permessage-deflate; server_max_window_bits', null],
    ['permessage-deflate; client_max_window_bits=0', null],
    ['permessage-deflate; server_no_context_takeover=1', null],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', null],
    ['permessage-deflate; foo=bar', null],
    ['x-webkit-deflate-frame', null],
  ];
  it('accepts valid offers with the right response and declines invalid ones without failing the handshake', async () => {
    for (const [offer, expected] of cases) {
      const p = await Peer.open(deflate, { 'Sec-WebSocket-Extensions': offer });
      if (expected === null) {
        expect({ offer, ext: p.extensions }).toEqual({ offer, ext: '' });
      } else {
        expect(p.extensions.split(';')[0]).toBe('permessage-deflate');
        const got = extParams(p.extensions);
        for (const [k, v] of Object.entries(expected))
          expect({ offer, [k]: got[k] }).toEqual({ offer, [k]: v });
        // Never something the client did not allow.
        if (!offer.includes('client_max_window_bits')) expect(got.client_max_window_bits).toBeUndefined();
      }
      // Still a working connection either way.
      p.send(text('after negotiation'));
      await p.waitMessages(1);
      const inflater = new StreamInflater(true);
      expect(p.messages(inflater)[0]!.data.toString()).toBe('after negotiation');
      await closesCleanly(p);
    }
  });

  it('falls back to the next offer when the first is invalid', async () => {
    const p = await Peer.open(deflate, {
      'Sec-WebSocket-Extensions':
        'permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits',
    });
    expect(p.extensions.startsWith('permessage-deflate')).toBe(true);
    await closesCleanly(p);
  });
});

describe('12/13 permessage-deflate traffic', () => {
  const sizes = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072];
  const combos: Array<[string, string]> = [
    ['13.1 default offer', 'permessage-deflate; client_max_window_bits'],
    [
      '13.2 no context takeover',
      'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover',
    ],
    ['13.3 server_max_window_bits=8', 'permessage-deflate; client_max_window_bits; server_max_window_bits=8'],
    [
      '13.4 server_max_window_bits=15',
      'permessage-deflate; client_max_window_bits; server_max_window_bits=15',
    ],
    [
      '13.5 no context + window 8',
      'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8',
    ],
    [
      '13.6 no context + window 15',
      'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15',
    ],
    ['window 9 + client 9', 'permessage-deflate; client_max_window_bits=9; server_max_window_bits=9'],
  ];
  for (const [id, offer] of combos) {
    it(`${id}: compressed text/binary of 16 B..128 KiB, whole and fragmented, echoed and decodable`, async () => {
      const p = await Peer.open(deflate, { 'Sec-WebSocket-Extensions': offer });
      const params = extParams(p.extensions);
      const bits = params.server_max_window_bits === undefined ? 15 : Number(params.server_max_window_bits);
      const inflater = new StreamInflater(params.server_no_context_takeover !== true, bits);
      const sent: Array<{ opcode: number; data: Buffer }> = [];
      let k = 0;
      for (const size of sizes) {
        for (const opcode of [Op.text, Op.binary]) {
          // Twice the same content: the second message can reference the first with context.
          for (let rep = 0; rep < 2; rep++) {
            const data = opcode === Op.text ? sampleText(size, size) : randomBytes(size);
            const z = deflateMessage(data);
            if (k++ % 3 === 2 && z.length > 4) {
              const cut = z.length >> 1;
              p.send(
                encode(opcode, z.subarray(0, cut), { rsv: 4, fin: false }),
                encode(Op.cont, z.subarray(cut)),
              );
            } else {
              p.send(encode(opcode, z, { rsv: 4 }));
            }
            sent.push({ opcode, data });
          }
        }
      }
      await p.waitMessages(sent.length, 20_000);
      const got = p.messages(inflater);
      expect(got.length).toBe(sent.length);
      for (let i = 0; i < sent.length; i++) {
        expect(got[i]!.opcode).toBe(sent[i]!.opcode);
        expect(got[i]!.data.equals(sent[i]!.data)).toBe(true);
      }
      // Every echo above the example's threshold (0) is compressed.
      expect(got.every((m) => m.compressed)).toBe(true);
      await closesCleanly(p);
    });
  }

  // `ws` as the Autobahn stand-in: it inflates with the negotiated window and checks the
  // response against its offer.
  const wsOffers: Array<Record<string, number | boolean>> = [
    {},
    { serverNoContextTakeover: true, clientNoContextTakeover: true },
    ...[8, 9, 12, 15].map((n) => ({ serverMaxWindowBits: n })),
    { serverMaxWindowBits: 8, serverNoContextTakeover: true },
    { clientMaxWindowBits: 8 },
    { clientMaxWindowBits: 11, serverMaxWindowBits: 10 },
  ];
  it('interoperates with ws clients for every offer combination, with context takeover across messages', async () => {
    for (const offer of wsOffers) {
      const ws = new WS(`ws://127.0.0.1:${deflate}`, { perMessageDeflate: { threshold: 0, ...offer } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      expect(ws.extensions).toMatch(/permessage-deflate/);
      const sent: Buffer[] = [];
      for (const size of [64, 300, 4096, 40_000]) {
        for (let rep = 0; rep < 3; rep++) sent.push(sampleText(size, size + rep));
      }
      const got: Buffer[] = [];
      ws.on('message', (d: Buffer) => got.push(d));
      const errors: Error[] = [];
      ws.on('error', (e) => errors.push(e));
      for (const s of sent) ws.send(s);
      await until(() => got.length === sent.length || errors.length > 0, 15_000, 'ws echoes');
      expect({ offer, errors: errors.map((e) => e.message) }).toEqual({ offer, errors: [] });
      for (let i = 0; i < sent.length; i++) expect(got[i]!.equals(sent[i]!)).toBe(true);
      const closed = new Promise<number>((r) => ws.once('close', (c: number) => r(c)));
      ws.close(1000);
      expect(await closed).toBe(1000);
    }
  });

  it('12.x: 1000 compressed messages (context takeover, 256-byte autofragments) echo in order; timed against ws', async () => {
    const { proc, port: wsDeflate } = await startEchoServer([
      '--input-type=module',
      '-e',
      WS_ECHO_SERVER,
      '--',
      '--deflate',
    ]);
    procs.push(proc);
    const run = async (port: number) => {
      const p = await Peer.open(port, {
        'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      });
      expect(p.extensions).toMatch(/^permessage-deflate/);
      const sent: Buffer[] = [];
      const frames: Buffer[] = [];
      for (let i = 0; i < 1000; i++) {
        const data = sampleText(64 + (i % 8) * 256, i);
        sent.push(data);
        const z = deflateMessage(data);
        for (let off = 0; off < z.length || off === 0; off += 256) {
          const last = off + 256 >= z.length;
          frames.push(
            encode(off === 0 ? Op.text : Op.cont, z.subarray(off, off + 256), {
              fin: last,
              rsv: off === 0 ? 4 : 0,
            }),
          );
          if (last) break;
        }
      }
      const start = Date.now();
      p.send(Buffer.concat(frames));
      await p.waitMessages(1000, 30_000);
      const ms = Date.now() - start;
      const got = p.messages(new StreamInflater(!/server_no_context_takeover/.test(p.extensions)));
      expect(got.length).toBe(1000);
      for (let i = 0; i < 1000; i++) expect(got[i]!.data.equals(sent[i]!)).toBe(true);
      await closesCleanly(p);
      return ms;
    };
    const ours = await run(deflate);
    const theirs = await run(wsDeflate);
    console.log(`12.x 1000 compressed messages: ours ${ours} ms, ws ${theirs} ms`);
    proc.kill();
  });

  it('fails a compressed message with corrupt data (1007) and a compressed continuation (1002)', async () => {
    const p = await Peer.open(deflate, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    p.send(encode(Op.text, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv: 4 }));
    await failsWith(p, 1007);
    const q = await Peer.open(deflate, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    q.send(
      encode(Op.text, deflateMessage(Buffer.from('ab')), { rsv: 4, fin: false }),
      encode(Op.cont, 'x', { rsv: 4 }),
    );
    await failsWith(q, 1002);
  });
});

// ---------------------------------------------------------------- 9 limits and performance

const MiB = 1024 * 1024;
const timings: Array<{ id: string; ours: number; ws: number }> = [];

describe('9 limits and performance, against ws under the same harness', () => {
  let wsProc: Child;
  let wsPort = 0;
  beforeAll(async () => {
    const s = await startEchoServer(['--input-type=module', '-e', WS_ECHO_SERVER]);
    wsProc = s.proc;
    wsPort = s.port;
    procs.push(wsProc);
  }, 30_000);

  afterAll(() => {
    if (timings.length === 0) return;
    const lines = timings.map(
      (t) =>
        `${t.id.padEnd(34)} ours ${String(t.ours).padStart(5)} ms   ws ${String(t.ws).padStart(5)} ms   ratio ${(t.ws / Math.max(t.ours, 1)).toFixed(2)}`,
    );
    console.log(
      `Autobahn 9.x equivalents (wall time incl. masking and parsing in the harness):\n${lines.join('\n')}`,
    );
  });

  async function roundTrip(
    port: number,
    frames: Buffer,
    expected: Buffer,
    opcode: number,
    chop = 0,
  ): Promise<number> {
    const p = await Peer.open(port);
    const start = Date.now();
    if (chop) await p.sendChopped(frames, chop);
    else p.send(frames);
    await p.waitMessages(1, 60_000);
    const ms = Date.now() - start;
    const m = p.messages();
    expect(m.length).toBe(1);
    expect(m[0]!.opcode).toBe(opcode);
    expect(m[0]!.data.equals(expected)).toBe(true);
    await closesCleanly(p);
    return ms;
  }

  async function compare(
    id: string,
    frames: Buffer,
    expected: Buffer,
    opcode: number,
    chop = 0,
  ): Promise<void> {
    // Interleaved, so machine noise hits both alike.
    const ours = await roundTrip(plain, frames, expected, opcode, chop);
    const theirs = await roundTrip(wsPort, frames, expected, opcode, chop);
    timings.push({ id, ours, ws: theirs });
  }

  const single = [
    ['.1', 64 * 1024],
    ['.2', 256 * 1024],
    ['.3', MiB],
    ['.4', 4 * MiB],
    ['.5', 8 * MiB],
    ['.6', 16 * MiB],
  ] as const;

  it('9.1.1-9.1.6 / 9.2.1-9.2.6: text and binary 64 KiB..16 MiB in one frame', async () => {
    for (const [n, size] of single) {
      const t = Buffer.alloc(size, '*');
      await compare(`9.1${n} text ${size / 1024} KiB`, text(t), t, Op.text);
      const b = Buffer.alloc(size, 0xfe);
      await compare(`9.2${n} binary ${size / 1024} KiB`, binary(b), b, Op.binary);
    }
  }, 120_000);

  it('9.3.x/9.4.x: 4 MiB in frames of 64 B, 4 KiB, 64 KiB, 1 MiB; 16 MiB text in 64 KiB frames', async () => {
    const build = (payload: Buffer, opcode: number, frameSize: number) => {
      const frames: Buffer[] = [];
      for (let i = 0; i < payload.length; i += frameSize) {
        frames.push(
          encode(i === 0 ? opcode : Op.cont, payload.subarray(i, i + frameSize), {
            fin: i + frameSize >= payload.length,
          }),
        );
      }
      return Buffer.concat(frames);
    };
    for (const frameSize of [64, 4096, 65536, MiB]) {
      const t = Buffer.alloc(4 * MiB, '*');
      await compare(`9.3.x text 4 MiB / ${frameSize} B frames`, build(t, Op.text, frameSize), t, Op.text);
      const b = Buffer.alloc(4 * MiB, 0xfe);
      await compare(
        `9.4.x binary 4 MiB / ${frameSize} B frames`,
        build(b, Op.binary, frameSize),
        b,
        Op.binary,
      );
    }
    const big = Buffer.alloc(16 * MiB, 'x');
    await compare('text 16 MiB / 64 KiB frames', build(big, Op.text, 65536), big, Op.text);
  }, 120_000);

  it('9.5.x/9.6.x: 1 MiB text and binary written in 64 B..4 KiB chops', async () => {
    for (const chop of [64, 512, 4096]) {
      const t = Buffer.alloc(MiB, '*');
      await compare(`9.5.x text 1 MiB / ${chop} B chops`, text(t), t, Op.text, chop);
      const b = Buffer.alloc(MiB, 0xfe);
      await compare(`9.6.x binary 1 MiB / ${chop} B chops`, binary(b), b, Op.binary, chop);
    }
  }, 120_000);

  it('9.7.x/9.8.x: 1000 messages of 0 B..16 KiB sent back to back, echoed in order', async () => {
    const burst = async (port: number, size: number, opcode: number): Promise<number> => {
      const p = await Peer.open(port);
      const payload = opcode === Op.text ? Buffer.alloc(size, '*') : Buffer.alloc(size, 0xfe);
      const one = encode(opcode, payload);
      const start = Date.now();
      p.send(Buffer.concat(Array.from({ length: 1000 }, () => one)));
      await p.waitMessages(1000, 30_000);
      const ms = Date.now() - start;
      const m = p.messages();
      expect(m.length).toBe(1000);
      expect(m.every((x) => x.opcode === opcode && x.data.equals(payload))).toBe(true);
      await closesCleanly(p);
      return ms;
    };
    for (const size of [0, 64, 4096, 16384]) {
      for (const opcode of [Op.text, Op.binary]) {
        const ours = await burst(plain, size, opcode);
        const theirs = await burst(wsPort, size, opcode);
        timings.push({ id: `9.${opcode === Op.text ? 7 : 8}.x 1000 x ${size} B`, ours, ws: theirs });
      }
    }
  }, 120_000);

  it('fails a message past the example maxPayload (64 MiB) with 1009 from the header alone', async () => {
    const p = await Peer.open(plain);
    p.send(encode(Op.binary, Buffer.alloc(0), { declaredLength: 64 * MiB + 1 }));
    await failsWith(p, 1009);
  });
});
