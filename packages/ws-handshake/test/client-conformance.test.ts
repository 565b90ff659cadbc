import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connect,
  HandshakeError,
  HandshakeTimeoutError,
  InvalidArgumentError,
  TooManyRedirectsError,
  type WebSocket,
} from '../src/index.js';
import { closePayload, FrameReader, frame, Op, waitFor, withTimeout } from './helpers.js';

// A hand-written server: it answers the handshake as told and then sends crafted frames.

interface RawPeer {
  socket: net.Socket;
  reader: FrameReader;
  request: string;
  ended: () => boolean;
}

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function rawServer(
  respond: (headers: Record<string, string>, accept: string) => string = (_h, accept) =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
): Promise<{ port: number; peer: Promise<RawPeer> }> {
  let resolvePeer!: (p: RawPeer) => void;
  const peer = new Promise<RawPeer>((r) => {
    resolvePeer = r;
  });
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let acc = Buffer.alloc(0);
    let ended = false;
    socket.on('end', () => {
      ended = true;
    });
    socket.on('close', () => {
      ended = true;
    });
    const reader = new FrameReader();
    const onData = (c: Buffer) => {
      acc = Buffer.concat([acc, c]);
      const idx = acc.indexOf('\r\n\r\n');
      if (idx === -1) return;
      socket.removeListener('data', onData);
      const request = acc.subarray(0, idx).toString('latin1');
      const headers: Record<string, string> = {};
      for (const line of request.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      const accept = createHash('sha1')
        .update(`${headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest('base64');
      socket.write(respond(headers, accept));
      socket.on('data', (d: Buffer) => reader.push(d));
      resolvePeer({ socket, reader, request, ended: () => ended });
    };
    socket.on('data', onData);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, peer };
}

async function clientFailsWith(frames: Buffer[], code: number): Promise<WebSocket> {
  const { port, peer } = await rawServer();
  const ws = await connect(`ws://127.0.0.1:${port}`);
  const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
  const p = await peer;
  p.socket.write(Buffer.concat(frames));
  await waitFor(() => p.reader.frames.some((f) => f.opcode === Op.close));
  const close = p.reader.frames.find((f) => f.opcode === Op.close)!;
  expect(close.masked).toBe(true);
  expect(close.payload.readUInt16BE(0)).toBe(code);
  p.socket.end();
  expect(await withTimeout(closed, 10_000, 'client close')).toBe(code);
  return ws;
}

describe('client frame handling', () => {
  it('masks every frame it sends with a fresh key and echoes messages', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`);
    const p = await peer;
    await ws.send('same');
    await ws.send('same');
    await waitFor(() => p.reader.frames.length >= 2);
    const [a, b] = p.reader.frames;
    expect(a!.masked && b!.masked).toBe(true);
    expect(a!.payload.toString()).toBe('same');
    ws.terminate();
  });

  it('receives unmasked text, binary, fragmented and large messages', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`, { maxPayload: 2 * 1024 * 1024 });
    const got: Array<string | Buffer> = [];
    ws.on('message', (d) => got.push(d));
    const p = await peer;
    const big = Buffer.alloc(1024 * 1024 + 3, 7);
    p.socket.write(
      Buffer.concat([
        frame({ opcode: Op.text, payload: 'hi', mask: false }),
        frame({ opcode: Op.binary, payload: Buffer.from([1, 2]), mask: false }),
        frame({ opcode: Op.text, payload: 'a', fin: false, mask: false }),
        frame({ opcode: Op.ping, payload: 'mid', mask: false }),
        frame({ opcode: Op.cont, payload: 'b', mask: false }),
        frame({ opcode: Op.binary, payload: big, mask: false }),
      ]),
    );
    await waitFor(() => got.length === 4);
    expect(got.slice(0, 3)).toEqual(['hi', Buffer.from([1, 2]), 'ab']);
    expect((got[3] as Buffer).equals(big)).toBe(true);
    await waitFor(() => p.reader.frames.some((f) => f.opcode === Op.pong));
    expect(p.reader.frames.find((f) => f.opcode === Op.pong)!.payload.toString()).toBe('mid');
    ws.terminate();
  });

  it('fails masked server frames with 1002', async () => {
    await clientFailsWith([frame({ opcode: Op.text, payload: 'x', mask: true })], 1002);
  });
  it('fails reserved bits and opcodes with 1002', async () => {
    await clientFailsWith([frame({ opcode: Op.text, payload: 'x', mask: false, rsv: 1 })], 1002);
    await clientFailsWith([frame({ opcode: 0xb, mask: false })], 1002);
  });
  it('fails invalid UTF-8 with 1007', async () => {
    await clientFailsWith(
      [frame({ opcode: Op.text, payload: Buffer.from([0xc0, 0x80]), mask: false })],
      1007,
    );
  });
  it('fails bad control frames, bad continuations and bad close frames like the server does', async () => {
    await clientFailsWith([frame({ opcode: Op.ping, payload: Buffer.alloc(126), mask: false })], 1002);
    await clientFailsWith([frame({ opcode: Op.ping, fin: false, mask: false })], 1002);
    await clientFailsWith([frame({ opcode: Op.cont, payload: 'x', mask: false })], 1002);
    await clientFailsWith(
      [
        frame({ opcode: Op.text, payload: 'a', fin: false, mask: false }),
        frame({ opcode: Op.binary, mask: false }),
      ],
      1002,
    );
    await clientFailsWith([frame({ opcode: Op.close, payload: closePayload(1005), mask: false })], 1002);
    await clientFailsWith([frame({ opcode: Op.close, payload: Buffer.from([3]), mask: false })], 1002);
    await clientFailsWith(
      [frame({ opcode: Op.close, payload: closePayload(1000, Buffer.from([0xff])), mask: false })],
      1007,
    );
    await clientFailsWith(
      [
        frame({ opcode: Op.text, payload: Buffer.from([0xe2, 0x82]), fin: false, mask: false }),
        frame({ opcode: Op.cont, payload: Buffer.from([0x41]), mask: false }),
      ],
      1007,
    );
  });

  it('inflates compressed server frames after negotiation and rejects RSV1 without it', async () => {
    const { deflateRawSync } = await import('node:zlib');
    const body = deflateRawSync(Buffer.from('compressed hello '.repeat(10)), { finishFlush: 2 });
    const { port, peer } = await rawServer(
      (_h, accept) =>
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n`,
    );
    const ws = await connect(`ws://127.0.0.1:${port}`, { perMessageDeflate: true });
    const got = new Promise((r) => ws.once('message', r));
    const p = await peer;
    p.socket.write(
      frame({ opcode: Op.text, payload: body.subarray(0, body.length - 4), rsv: 4, mask: false }),
    );
    expect(await got).toBe('compressed hello '.repeat(10));
    ws.terminate();
    await clientFailsWith([frame({ opcode: Op.text, payload: body, rsv: 4, mask: false })], 1002);
  });

  it('fails oversized messages with 1009', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`, { maxPayload: 100 });
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    const p = await peer;
    p.socket.write(frame({ opcode: Op.binary, payload: Buffer.alloc(101), mask: false }));
    await waitFor(() => p.reader.frames.some((f) => f.opcode === Op.close));
    p.socket.end();
    expect(await closed).toBe(1009);
    expect(ws.closeError?.code).toBe('ERR_WS_MESSAGE_TOO_BIG');
  });

  it('replies to a server close and waits for the server to close TCP first', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`);
    const closed = new Promise<[number, string]>((r) => ws.once('close', (c, reason) => r([c, reason])));
    const p = await peer;
    p.socket.write(frame({ opcode: Op.close, payload: closePayload(1001, 'going'), mask: false }));
    await waitFor(() => p.reader.frames.some((f) => f.opcode === Op.close));
    expect(p.reader.frames.find((f) => f.opcode === Op.close)!.payload.readUInt16BE(0)).toBe(1001);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.ended()).toBe(false); // client did not close TCP on its own
    expect(ws.readyState).toBe(2);
    p.socket.end();
    expect(await closed).toEqual([1001, 'going']);
  });

  it('destroys the socket when the server never answers its close (closeTimeout)', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`, { closeTimeout: 200 });
    await peer;
    const started = Date.now();
    await ws.close(1000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(ws.closeCode).toBe(1006);
    expect(ws.closeError?.code).toBe('ERR_WS_CLOSE_TIMEOUT');
  });

  it('reports 1006 when TCP drops without a close frame', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}`);
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    (await peer).socket.destroy();
    expect(await closed).toBe(1006);
  });
});

describe('client handshake verification', () => {
  const fails = async (respond: (h: Record<string, string>, accept: string) => string, opts = {}) => {
    const { port } = await rawServer(respond);
    return connect(`ws://127.0.0.1:${port}`, opts).then(
      () => {
        throw new Error('should have failed');
      },
      (e: unknown) => e,
    );
  };
  const ok = (accept: string, extra = '') =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;

  it('sends a valid request', async () => {
    const { port, peer } = await rawServer();
    const ws = await connect(`ws://127.0.0.1:${port}/path?q=1`, {
      protocols: ['a', 'b'],
      origin: 'https://o.example',
      headers: { 'X-Token': 't' },
    });
    const p = await peer;
    expect(p.request).toMatch(/^GET \/path\?q=1 HTTP\/1\.1/);
    expect(p.request).toMatch(/Sec-WebSocket-Version: 13/);
    expect(p.request).toMatch(/Sec-WebSocket-Protocol: a, b/);
    expect(p.request).toMatch(/Origin: https:\/\/o\.example/);
    expect(p.request).toMatch(/X-Token: t/);
    expect(p.request).toMatch(/Host: 127\.0\.0\.1:\d+/);
    expect(ws.protocol).toBe('');
    ws.terminate();
  });

  it('rejects a wrong Sec-WebSocket-Accept', async () => {
    const e = await fails(() => ok('AAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    expect(e).toBeInstanceOf(HandshakeError);
    expect((e as Error).message).toMatch(/Accept/);
  });
  it('rejects a missing Upgrade header', async () => {
    const e = await fails(
      (_h, a) =>
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${a}\r\n\r\n`,
    );
    expect(e).toBeInstanceOf(HandshakeError);
  });
  it('rejects a subprotocol that was not offered', async () => {
    const e = await fails((_h, a) => ok(a, 'Sec-WebSocket-Protocol: c\r\n'), { protocols: ['a'] });
    expect((e as Error).message).toMatch(/subprotocol/);
  });
  it('rejects an extension that was not offered', async () => {
    const e = await fails((_h, a) => ok(a, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
    expect((e as Error).message).toMatch(/extension/);
  });
  it('rejects invalid permessage-deflate response params', async () => {
    for (const ext of [
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; foo',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate, permessage-deflate',
    ]) {
      const e = await fails((_h, a) => ok(a, `Sec-WebSocket-Extensions: ${ext}\r\n`), {
        perMessageDeflate: true,
      });
      expect(e).toBeInstanceOf(HandshakeError);
    }
  });
  it('does not follow redirects by default, and bounds them when enabled', async () => {
    const { port } = await rawServer(
      () => 'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n',
    );
    const e = (await connect(`ws://127.0.0.1:${port}`).catch((x: unknown) => x)) as HandshakeError;
    expect(e).toBeInstanceOf(HandshakeError);
    expect(e.status).toBe(302);
    const e2 = await connect(`ws://127.0.0.1:${port}`, { maxRedirects: 2 }).catch((x: unknown) => x);
    expect(e2).toBeInstanceOf(TooManyRedirectsError);
  });
  it('follows a redirect to a working server when allowed', async () => {
    const target = await rawServer();
    const { port } = await rawServer(
      () => `HTTP/1.1 301 Moved\r\nLocation: ws://127.0.0.1:${target.port}/new\r\nContent-Length: 0\r\n\r\n`,
    );
    const ws = await connect(`ws://127.0.0.1:${port}/old`, { maxRedirects: 1 });
    expect(ws.url).toBe(`ws://127.0.0.1:${target.port}/new`);
    ws.terminate();
  });
  it('times out a server that never answers', async () => {
    const server = net.createServer((s) => s.on('error', () => {}));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const e = await connect(`ws://127.0.0.1:${port}`, { timeout: 200 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HandshakeTimeoutError);
  });
  it('rejects bad URLs and protocols with InvalidArgumentError', async () => {
    for (const [url, opts] of [
      ['ftp://x', {}],
      ['ws://x/#frag', {}],
      ['not a url', {}],
      ['ws://127.0.0.1:1', { protocols: ['a', 'a'] }],
      ['ws://127.0.0.1:1', { protocols: ['bad protocol'] }],
    ] as const) {
      const e = await connect(url, opts).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InvalidArgumentError);
    }
  });
  it('reports connection refusal as ERR_WS_SOCKET', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((r) => server.close(r));
    const e = (await connect(`ws://127.0.0.1:${port}`).catch((x: unknown) => x)) as { code: string };
    expect(e.code).toBe('ERR_WS_SOCKET');
  });
});
