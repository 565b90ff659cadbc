import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Child,
  closeBody,
  ContextDeflater,
  deflateMessage,
  encode,
  ensureBuilt,
  type Frame,
  Op,
  Reader,
  StreamInflater,
  sleep,
  startNode,
  until,
} from './audit-helpers.js';

/*
 * Independent audit of `examples/autobahn-client.mjs` as a real child process, against a
 * stand-in for Autobahn's fuzzingserver written here on raw `net`: it speaks the URL protocol
 * (/getCaseCount, /runCase?case=N&agent=A, /updateReports?agent=A), answers the handshake
 * itself and plays crafted, unmasked server frames at the client, checking every reply.
 */

const u = (
  opcode: number,
  payload: Buffer | string = Buffer.alloc(0),
  o: Parameters<typeof encode>[2] = {},
) => encode(opcode, payload, { mask: false, ...o });

let failures = 0;
let failedWithEarlyFin = 0;

class ServerSide {
  readonly reader = new Reader();
  clientEndedFirst = false;
  ended = false;
  weEnded = false;
  constructor(
    readonly socket: net.Socket,
    readonly request: string,
  ) {
    socket.on('data', (c: Buffer) => this.reader.push(c));
    socket.on('end', () => {
      if (!this.weEnded) this.clientEndedFirst = true;
      this.ended = true;
    });
    socket.on('close', () => {
      this.ended = true;
    });
  }
  get frames(): Frame[] {
    return this.reader.frames;
  }
  send(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }
  async messages(n: number, timeoutMs = 10_000, inflater?: StreamInflater) {
    await until(
      () => this.frames.filter((f) => f.opcode < 8 && f.fin).length >= n || this.closeCode() !== undefined,
      timeoutMs,
      `${n} echoes`,
    );
    const out: Array<{ opcode: number; data: Buffer; compressed: boolean }> = [];
    let parts: Buffer[] = [];
    let opcode = 0;
    let compressed = false;
    for (const f of this.frames) {
      if (f.opcode >= 8) continue;
      if (f.opcode !== Op.cont) {
        opcode = f.opcode;
        compressed = (f.rsv & 4) !== 0;
        parts = [];
      }
      parts.push(f.payload);
      if (f.fin) {
        const raw = Buffer.concat(parts);
        out.push({ opcode, compressed, data: compressed ? inflater!.inflate(raw) : raw });
      }
    }
    return out;
  }
  closeCode(): number | undefined {
    const c = this.frames.find((f) => f.opcode === Op.close);
    if (c === undefined) return undefined;
    return c.payload.length >= 2 ? c.payload.readUInt16BE(0) : 1005;
  }
  async waitClose(timeoutMs = 10_000): Promise<number> {
    await until(() => this.closeCode() !== undefined || this.ended, timeoutMs, 'client close frame');
    const code = this.closeCode();
    if (code === undefined) throw new Error('client dropped TCP without a close frame');
    return code;
  }
  /** Server-initiated normal close: the client must echo the code and leave TCP to us. */
  async closeNormally(code = 1000): Promise<number> {
    this.send(u(Op.close, closeBody(code)));
    const got = await this.waitClose();
    if (this.clientEndedFirst) throw new Error('client closed TCP before the server did');
    this.end();
    return got;
  }
  /** The client must fail the connection with `expected`; we answer and drop TCP. */
  async expectFailure(expected: number): Promise<void> {
    const got = await this.waitClose();
    if (got !== expected) throw new Error(`client closed with ${got}, expected ${expected}`);
    // Informational (Autobahn does not require a clean close here): did the client send its
    // FIN right after its close frame instead of waiting for ours?
    await sleep(5);
    if (this.clientEndedFirst) failedWithEarlyFin++;
    failures++;
    this.send(u(Op.close, closeBody(got)));
    this.end();
  }
  end(): void {
    this.weEnded = true;
    this.socket.end();
  }
  allMasked(): boolean {
    return this.frames.every((f) => f.masked);
  }
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

interface Case {
  id: string;
  /** Sec-WebSocket-Extensions response when the client offered permessage-deflate. */
  accept?: string;
  /** Frames sent in the same write as the 101 response. */
  early?: Buffer;
  run: (s: ServerSide) => Promise<void>;
}

const MiB = 1024 * 1024;
const timings: Record<string, number> = {};

async function echoes(
  s: ServerSide,
  msgs: Array<[number, Buffer]>,
  inflater?: StreamInflater,
): Promise<void> {
  const got = await s.messages(msgs.length, 30_000, inflater);
  check(got.length === msgs.length, `expected ${msgs.length} echoes, got ${got.length}`);
  for (let i = 0; i < msgs.length; i++) {
    check(got[i]!.opcode === msgs[i]![0], `echo ${i} has opcode ${got[i]!.opcode}`);
    check(got[i]!.data.equals(msgs[i]![1]), `echo ${i} differs`);
  }
  check(s.allMasked(), 'a client frame was not masked');
}

const kosme = Buffer.from('κόσμε');

const cases: Case[] = [
  {
    id: '1.x text and binary of 0..65536 bytes are echoed, masked',
    run: async (s) => {
      const msgs: Array<[number, Buffer]> = [];
      for (const len of [0, 125, 126, 127, 128, 65535, 65536]) {
        msgs.push([Op.text, Buffer.alloc(len, '*')], [Op.binary, Buffer.alloc(len, 0xfe)]);
      }
      for (const [op, d] of msgs) s.send(u(op, d));
      await echoes(s, msgs);
      check((await s.closeNormally()) === 1000, 'close not echoed with 1000');
    },
  },
  {
    id: 'frames in the same TCP write as the 101 response are delivered',
    early: Buffer.concat([u(Op.text, 'early bird'), u(Op.ping, 'early ping')]),
    run: async (s) => {
      await echoes(s, [[Op.text, Buffer.from('early bird')]]);
      // The pong may leave in a separate write just after the echo.
      await until(
        () => s.frames.some((f) => f.opcode === Op.pong && f.payload.toString() === 'early ping'),
        5000,
        'pong to the early ping',
      );
      await s.closeNormally();
    },
  },
  {
    id: '2.1-2.10 pongs echo ping payloads exactly; unsolicited pongs are ignored',
    run: async (s) => {
      const payloads = [
        Buffer.alloc(0),
        Buffer.from('Hello, world!'),
        Buffer.alloc(125, 0xfe),
        randomBytes(50),
      ];
      s.send(u(Op.pong, 'unsolicited'));
      for (const p of payloads) s.send(u(Op.ping, p));
      await until(() => s.frames.length >= payloads.length, 5000, 'pongs');
      await sleep(50);
      check(s.frames.length === payloads.length, 'an unsolicited pong was answered');
      for (let i = 0; i < payloads.length; i++) {
        check(
          s.frames[i]!.opcode === Op.pong && s.frames[i]!.payload.equals(payloads[i]!),
          `pong ${i} differs`,
        );
      }
      check(s.allMasked(), 'pong not masked');
      await s.closeNormally();
    },
  },
  {
    id: '2.5 a ping with a 126-byte payload fails with 1002',
    run: async (s) => {
      s.send(u(Op.ping, Buffer.alloc(126)));
      await s.expectFailure(1002);
    },
  },
  {
    id: 'a masked server frame fails with 1002',
    run: async (s) => {
      s.send(encode(Op.text, 'masked', { mask: true }));
      await s.expectFailure(1002);
    },
  },
  {
    id: '3.2 text echoed, then RSV2 fails with 1002 and the ping is not answered',
    run: async (s) => {
      s.send(u(Op.text, 'Hello, world!'), u(Op.text, 'Hello, world!', { rsv: 2 }), u(Op.ping));
      await s.expectFailure(1002);
      check(!s.frames.some((f) => f.opcode === Op.pong), 'ping after the error was answered');
      check((await s.messages(1)).length === 1, 'first text not echoed');
    },
  },
  {
    id: '3.x RSV1 without permessage-deflate fails with 1002',
    run: async (s) => {
      s.send(u(Op.text, 'x', { rsv: 4 }));
      await s.expectFailure(1002);
    },
  },
  {
    id: '4.x reserved opcodes 3 and 11 fail with 1002',
    run: async (s) => {
      s.send(u(3, 'reserved'));
      await s.expectFailure(1002);
    },
  },
  {
    id: '4.2.x reserved control opcode fails with 1002',
    run: async (s) => {
      s.send(u(11));
      await s.expectFailure(1002);
    },
  },
  {
    id: '5.1 a fragmented ping fails with 1002',
    run: async (s) => {
      s.send(u(Op.ping, 'fragment1', { fin: false }), u(Op.cont, 'fragment2'));
      await s.expectFailure(1002);
    },
  },
  {
    id: '5.6/5.19 fragments with pings between: pongs first, then the whole message',
    run: async (s) => {
      s.send(u(Op.text, 'fragment1', { fin: false }), u(Op.ping, 'pongme 1!'));
      await sleep(30);
      s.send(u(Op.cont, 'fragment2', { fin: false }), u(Op.ping, 'pongme 2!'), u(Op.cont, 'fragment3'));
      await s.messages(1);
      check(
        s.frames.map((f) => f.opcode).join() === [Op.pong, Op.pong, Op.text].join(),
        `frames ${s.frames.map((f) => f.opcode)}`,
      );
      check(s.frames[2]!.payload.toString() === 'fragment1fragment2fragment3', 'reassembly');
      await s.closeNormally();
    },
  },
  {
    id: '5.9 a continuation with nothing to continue fails with 1002',
    run: async (s) => {
      s.send(u(Op.cont, 'non-continuation payload'));
      await s.expectFailure(1002);
    },
  },
  {
    id: '5.18 a new text frame inside a fragmented message fails with 1002',
    run: async (s) => {
      s.send(u(Op.text, 'fragment1', { fin: false }), u(Op.text, 'fragment2'));
      await s.expectFailure(1002);
    },
  },
  {
    id: '6.2.3 valid UTF-8 sent one byte per frame is echoed exactly',
    run: async (s) => {
      const payload = Buffer.from('Hello-µ@ßöäüàá-UTF-8!! κόσμε 🙂 \u{10ffff}');
      s.send(
        ...[...payload].map((b, i) =>
          u(i === 0 ? Op.text : Op.cont, Buffer.from([b]), { fin: i === payload.length - 1 }),
        ),
      );
      await echoes(s, [[Op.text, payload]]);
      await s.closeNormally();
    },
  },
  {
    id: '6.3.1 invalid UTF-8 fails with 1007',
    run: async (s) => {
      s.send(u(Op.text, Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex')));
      await s.expectFailure(1007);
    },
  },
  {
    id: '6.4.1 fail fast: an invalid fragment fails with 1007 before the message ends',
    run: async (s) => {
      s.send(u(Op.text, kosme, { fin: false }), u(Op.cont, Buffer.from('f4908080', 'hex'), { fin: false }));
      const code = await s.waitClose(5000);
      check(code === 1007, `got ${code}`);
      s.send(u(Op.cont, 'edited'));
      await s.expectFailure(1007);
    },
  },
  {
    id: '6.4.4 fail fast inside one frame whose payload is still arriving',
    run: async (s) => {
      const payload = Buffer.concat([kosme, Buffer.from('f490', 'hex'), Buffer.from('edited')]);
      const f = u(Op.text, payload);
      const cut = f.length - payload.length + kosme.length + 2;
      s.send(f.subarray(0, cut));
      const code = await s.waitClose(5000);
      check(code === 1007, `got ${code}`);
      s.send(f.subarray(cut));
      await s.expectFailure(1007);
    },
  },
  {
    id: '7.1.3 after the server close, a ping is not answered',
    run: async (s) => {
      s.send(u(Op.close, closeBody(1000)), u(Op.ping, 'x'));
      const code = await s.waitClose();
      check(code === 1000, `got ${code}`);
      await sleep(50);
      check(s.frames.length === 1, 'something followed the close frame');
      check(!s.clientEndedFirst, 'client closed TCP before the server');
      s.end();
    },
  },
  {
    id: 'a close followed at once by the server FIN is still answered with a close frame',
    run: async (s) => {
      s.send(u(Op.close, closeBody(4000, 'bye')));
      s.end();
      const code = await s.waitClose();
      check(code === 4000, `got ${code}`);
    },
  },
  {
    id: '7.1.5 a close inside a fragmented message is answered',
    run: async (s) => {
      s.send(u(Op.text, 'fragment1', { fin: false }));
      check((await s.closeNormally()) === 1000, 'close not echoed');
    },
  },
  {
    id: '7.3.1 an empty close is answered with an empty close or 1000',
    run: async (s) => {
      s.send(u(Op.close));
      const code = await s.waitClose();
      check(code === 1005 || code === 1000, `got ${code}`);
      s.end();
    },
  },
  {
    id: '7.3.2 a 1-byte close payload fails with 1002',
    run: async (s) => {
      s.send(u(Op.close, Buffer.from([3])));
      await s.expectFailure(1002);
    },
  },
  {
    id: '7.3.6 a close with a 124-byte reason fails with 1002',
    run: async (s) => {
      s.send(u(Op.close, closeBody(1000, '*'.repeat(124))));
      await s.expectFailure(1002);
    },
  },
  {
    id: '7.5.1 a close reason with invalid UTF-8 fails with 1007',
    run: async (s) => {
      s.send(u(Op.close, closeBody(1000, Buffer.from('cebae1bdb9cf83cebcceb5eda080', 'hex'))));
      await s.expectFailure(1007);
    },
  },
  ...[1001, 1003, 1011, 3000, 4999].map(
    (code): Case => ({
      id: `7.7.x close code ${code} is echoed`,
      run: async (s) => {
        const got = await s.closeNormally(code);
        check(got === code, `got ${got}`);
      },
    }),
  ),
  ...[0, 999, 1004, 1005, 1006, 1016, 2999, 5000, 65535].map(
    (code): Case => ({
      id: `7.9.x/7.13.x invalid close code ${code} fails with 1002`,
      run: async (s) => {
        s.send(u(Op.close, closeBody(code)));
        await s.expectFailure(1002);
      },
    }),
  ),
  {
    id: '9.1.6 16 MiB text in one frame is echoed',
    run: async (s) => {
      const t = Buffer.alloc(16 * MiB, '*');
      const start = Date.now();
      s.send(u(Op.text, t));
      await echoes(s, [[Op.text, t]]);
      timings['9.1.6 text 16 MiB'] = Date.now() - start;
      await s.closeNormally();
    },
  },
  {
    id: '9.2.6 16 MiB binary in one frame is echoed',
    run: async (s) => {
      const b = randomBytes(16 * MiB);
      const start = Date.now();
      s.send(u(Op.binary, b));
      await echoes(s, [[Op.binary, b]]);
      timings['9.2.6 binary 16 MiB'] = Date.now() - start;
      await s.closeNormally();
    },
  },
  {
    id: '16 MiB text in 64 KiB fragments is echoed',
    run: async (s) => {
      const t = Buffer.alloc(16 * MiB, 'y');
      const frames: Buffer[] = [];
      for (let i = 0; i < t.length; i += 65536) {
        frames.push(u(i === 0 ? Op.text : Op.cont, t.subarray(i, i + 65536), { fin: i + 65536 >= t.length }));
      }
      const start = Date.now();
      s.send(Buffer.concat(frames));
      await echoes(s, [[Op.text, t]]);
      timings['text 16 MiB / 64 KiB frames'] = Date.now() - start;
      await s.closeNormally();
    },
  },
  {
    id: '9.3.1 4 MiB text in 64-byte frames is echoed',
    run: async (s) => {
      const t = Buffer.alloc(4 * MiB, 'z');
      const frames: Buffer[] = [];
      for (let i = 0; i < t.length; i += 64) {
        frames.push(u(i === 0 ? Op.text : Op.cont, t.subarray(i, i + 64), { fin: i + 64 >= t.length }));
      }
      const start = Date.now();
      s.send(Buffer.concat(frames));
      await echoes(s, [[Op.text, t]]);
      timings['9.3.1 text 4 MiB / 64 B frames'] = Date.now() - start;
      await s.closeNormally();
    },
  },
  {
    id: '9.7.x 1000 small messages sent back to back are echoed in order',
    run: async (s) => {
      const msgs: Array<[number, Buffer]> = Array.from({ length: 1000 }, (_, i) => [
        Op.text,
        Buffer.from(`m${i}`),
      ]);
      const start = Date.now();
      s.send(Buffer.concat(msgs.map(([op, d]) => u(op, d))));
      await echoes(s, msgs);
      timings['9.7.x 1000 small texts'] = Date.now() - start;
      await s.closeNormally();
    },
  },
  {
    id: '12.x permessage-deflate: compressed whole/fragmented/uncompressed server messages, compressed echoes',
    accept: 'permessage-deflate',
    run: async (s) => {
      const inflater = new StreamInflater(true);
      const msgs: Array<[number, Buffer]> = [];
      for (const len of [0, 1, 64, 4096, 65536, 200_000]) {
        const t = Buffer.from('Hello, compressed world! '.repeat(Math.ceil(len / 25) + 1).slice(0, len));
        const z = deflateMessage(t);
        s.send(u(Op.text, z, { rsv: 4 }));
        msgs.push([Op.text, t]);
        const b = randomBytes(len);
        const zb = deflateMessage(b);
        const cut = zb.length >> 1;
        s.send(u(Op.binary, zb.subarray(0, cut), { rsv: 4, fin: false }), u(Op.cont, zb.subarray(cut)));
        msgs.push([Op.binary, b]);
        s.send(u(Op.text, t));
        msgs.push([Op.text, t]);
      }
      await echoes(s, msgs, inflater);
      await s.closeNormally();
    },
  },
  {
    id: '12.x server messages compressed with context takeover (referencing earlier messages)',
    accept: 'permessage-deflate; server_max_window_bits=11',
    run: async (s) => {
      const deflater = new ContextDeflater(11);
      const inflater = new StreamInflater(true);
      const msgs: Array<[number, Buffer]> = [];
      const base = randomBytes(600).toString('base64');
      for (let i = 0; i < 20; i++) {
        // The same 800 characters again and again: each message is mostly back-references.
        const t = Buffer.from(`${i} ${base}`);
        const z = await deflater.compress(t);
        s.send(u(Op.text, z, { rsv: 4 }));
        msgs.push([Op.text, t]);
      }
      deflater.close();
      await echoes(s, msgs, inflater);
      await s.closeNormally();
    },
  },
  {
    id: '13.x permessage-deflate with no context takeover and small windows both ways',
    accept:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9',
    run: async (s) => {
      const inflater = new StreamInflater(false, 9);
      const msgs: Array<[number, Buffer]> = [];
      for (let i = 0; i < 10; i++) {
        const t = Buffer.from(`message ${i} `.repeat(500 + i * 100));
        s.send(u(Op.text, deflateMessage(t), { rsv: 4 }));
        msgs.push([Op.text, t]);
      }
      await echoes(s, msgs, inflater);
      await s.closeNormally();
    },
  },
  {
    id: '13.x client_max_window_bits=8 is honoured (echoes stay decodable)',
    accept: 'permessage-deflate; client_max_window_bits=8',
    run: async (s) => {
      const inflater = new StreamInflater(true, 9);
      const msgs: Array<[number, Buffer]> = [];
      for (let i = 0; i < 5; i++) {
        const t = Buffer.from(`${i}:${'abcdefghijklmnopqrstuvwxyz'.repeat(40)}`);
        s.send(u(Op.text, deflateMessage(t), { rsv: 4 }));
        msgs.push([Op.text, t]);
      }
      await echoes(s, msgs, inflater);
      await s.closeNormally();
    },
  },
  {
    id: '12.x corrupt compressed data fails with 1007',
    accept: 'permessage-deflate',
    run: async (s) => {
      s.send(u(Op.text, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv: 4 }));
      await s.expectFailure(1007);
    },
  },
  {
    id: '12.x RSV1 on a control frame fails with 1002 even with permessage-deflate',
    accept: 'permessage-deflate',
    run: async (s) => {
      s.send(u(Op.ping, 'x', { rsv: 4 }));
      await s.expectFailure(1002);
    },
  },
  {
    id: '12.x invalid UTF-8 inside a compressed text message fails with 1007',
    accept: 'permessage-deflate',
    run: async (s) => {
      s.send(u(Op.text, deflateMessage(Buffer.from('cebae1bdb9cf83cebcceb5eda080', 'hex')), { rsv: 4 }));
      await s.expectFailure(1007);
    },
  },
];

// ---------------------------------------------------------------- the fuzzing server

const results = new Map<number, string>();
let reportsAgent = '';
let countRequests = 0;
let server: net.Server;
let client: Child;
let clientExit = -1;
let clientMs = 0;

function handshake(socket: net.Socket, onOpen: (s: ServerSide, path: URL) => void): void {
  let acc = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    acc = Buffer.concat([acc, chunk]);
    const idx = acc.indexOf('\r\n\r\n');
    if (idx === -1) return;
    socket.removeListener('data', onData);
    const request = acc.subarray(0, idx).toString('latin1');
    const headers: Record<string, string> = {};
    for (const line of request.split('\r\n').slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const url = new URL(request.split(' ')[1]!, 'http://fuzzingserver');
    const accept = createHash('sha1')
      .update(`${headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    let ext = '';
    if (url.pathname === '/runCase') {
      const c = cases[Number(url.searchParams.get('case')) - 1];
      if (c?.accept && (headers['sec-websocket-extensions'] ?? '').includes('permessage-deflate')) {
        ext = `Sec-WebSocket-Extensions: ${c.accept}\r\n`;
      }
    }
    // Header spelling as Autobahn's fuzzingserver sends it.
    const response =
      'HTTP/1.1 101 Switching Protocols\r\nServer: AutobahnTestSuite/0.8.2-0.10.9\r\n' +
      `X-Powered-By: AutobahnPython/0.10.9\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${ext}\r\n`;
    const early =
      url.pathname === '/runCase' ? cases[Number(url.searchParams.get('case')) - 1]?.early : undefined;
    socket.write(early === undefined ? response : Buffer.concat([Buffer.from(response), early]));
    const s = new ServerSide(socket, request);
    if (acc.length > idx + 4) s.reader.push(acc.subarray(idx + 4));
    onOpen(s, url);
  };
  socket.on('data', onData);
  socket.on('error', () => {});
}

beforeAll(async () => {
  ensureBuilt();
  server = net.createServer((socket) =>
    handshake(socket, (s, url) => {
      if (url.pathname === '/getCaseCount') {
        countRequests++;
        s.send(u(Op.text, String(cases.length)));
        s.closeNormally().catch(() => s.socket.destroy());
      } else if (url.pathname === '/runCase') {
        const n = Number(url.searchParams.get('case'));
        const c = cases[n - 1];
        if (c === undefined || url.searchParams.get('agent') !== 'net') {
          results.set(n, 'bad case request');
          s.socket.destroy();
          return;
        }
        if (c.accept && !/permessage-deflate/.test(s.request)) {
          results.set(n, 'client did not offer permessage-deflate');
        }
        c.run(s).then(
          async () => {
            // The server has sent its FIN (closeNormally/expectFailure end TCP); the client must now
            // close its side too. A connection that never closes is a failed case, not an OK.
            const closed = await until(() => s.ended, 10_000, 'TCP close').then(
              () => true,
              () => false,
            );
            if (!closed && !results.has(n)) results.set(n, 'FAILED: the TCP connection never closed');
            if (!results.has(n)) results.set(n, 'OK');
            s.socket.destroy();
          },
          (error: Error) => {
            results.set(n, `FAILED: ${error.message}`);
            s.socket.destroy();
          },
        );
      } else if (url.pathname === '/updateReports') {
        reportsAgent = url.searchParams.get('agent') ?? '';
        s.closeNormally().catch(() => s.socket.destroy());
      } else {
        s.socket.destroy();
      }
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const start = Date.now();
  client = startNode(['examples/autobahn-client.mjs', '--url', `ws://127.0.0.1:${port}`, '--agent', 'net']);
  const exit = await Promise.race([client.exited, sleep(60_000).then(() => -2)]);
  clientExit = exit;
  clientMs = Date.now() - start;
}, 90_000);

afterAll(() => {
  client?.kill();
  server?.close();
  const lines = Object.entries(timings).map(([k, v]) => `${k.padEnd(34)} ${v} ms`);
  console.log(
    `autobahn-client.mjs: ${cases.length} cases in ${clientMs} ms; in ${failedWithEarlyFin} of ${failures} ` +
      `failed connections the client sent FIN before the server's close reply (allowed, informational)\n${lines.join('\n')}`,
  );
});

describe('examples/autobahn-client.mjs against a fuzzingserver stand-in', () => {
  it('speaks the URL protocol: case count, every case in order, report update, exit 0', () => {
    expect(clientExit).toBe(0);
    expect(countRequests).toBe(1);
    expect(results.size).toBe(cases.length);
    expect(reportsAgent).toBe('net');
    expect(client.output()).toContain('reports updated');
  });

  cases.forEach((c, i) => {
    it(`case ${i + 1}: ${c.id}`, () => {
      expect(results.get(i + 1)).toBe('OK');
    });
  });
});
