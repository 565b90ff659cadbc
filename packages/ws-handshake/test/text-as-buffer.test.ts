import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, handleH2Connect, handleUpgrade, isWebSocketConnect, type WebSocket } from '../src/index.js';
import { makeCert } from './h2-helpers.js';
import { frame, Op, rawClient, withTimeout } from './helpers.js';

// textAsBuffer: the receiver hands out the validated UTF-8 bytes of a text message (isBinary
// false) instead of decoding them, on every entry point and both transports.

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

let tls: { key: Buffer; cert: Buffer };
beforeAll(() => {
  tls = makeCert();
});

/** An HTTP/1.1 server whose upgrades go through handleUpgrade(options); resolves each accepted socket. */
async function upgradeServer(options: {
  textAsBuffer?: boolean;
}): Promise<{ port: number; accepted: Promise<WebSocket> }> {
  const server = http.createServer();
  let resolveAccepted!: (ws: WebSocket) => void;
  const accepted = new Promise<WebSocket>((r) => {
    resolveAccepted = r;
  });
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head, { heartbeatInterval: 0, ...options }).then((ws) => {
      if (ws !== null) resolveAccepted(ws);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, accepted };
}

function nextMessage(ws: WebSocket): Promise<[unknown, boolean]> {
  return withTimeout(
    new Promise((resolve) => ws.once('message', (data, isBinary) => resolve([data, isBinary]))),
    10_000,
    'message',
  );
}

describe('textAsBuffer', () => {
  it('handleUpgrade: text as its UTF-8 bytes, fragmented text too, binary unchanged', async () => {
    const { port, accepted } = await upgradeServer({ textAsBuffer: true });
    const client = await rawClient(port);
    cleanups.push(() => client.socket.destroy());
    const ws = await accepted;
    let got = nextMessage(ws);
    client.write(frame({ opcode: Op.text, payload: 'héllo wörld' }));
    let [data, isBinary] = await got;
    expect(Buffer.isBuffer(data)).toBe(true);
    expect((data as Buffer).toString('utf8')).toBe('héllo wörld');
    expect(isBinary).toBe(false);
    got = nextMessage(ws);
    const bytes = Buffer.from('€ split across frames');
    // The euro sign's three bytes straddle the two fragments.
    client.write(frame({ opcode: Op.text, payload: bytes.subarray(0, 2), fin: false }));
    client.write(frame({ opcode: Op.cont, payload: bytes.subarray(2) }));
    [data, isBinary] = await got;
    expect(Buffer.isBuffer(data)).toBe(true);
    expect(data).toEqual(bytes);
    expect(isBinary).toBe(false);
    got = nextMessage(ws);
    client.write(frame({ opcode: Op.binary, payload: Buffer.from([0xff, 0]) }));
    expect(await got).toEqual([Buffer.from([0xff, 0]), true]);
  });

  it('still fails invalid UTF-8 with 1007', async () => {
    const { port, accepted } = await upgradeServer({ textAsBuffer: true });
    const client = await rawClient(port);
    cleanups.push(() => client.socket.destroy());
    const ws = await accepted;
    const messages: unknown[] = [];
    ws.on('message', (d) => messages.push(d));
    client.write(frame({ opcode: Op.text, payload: Buffer.from([0x61, 0xc3, 0x28]) }));
    const { code } = await client.closed();
    expect(code).toBe(1007);
    expect(messages).toEqual([]);
  });

  it('default: text arrives as a string', async () => {
    const { port, accepted } = await upgradeServer({});
    const client = await rawClient(port);
    cleanups.push(() => client.socket.destroy());
    const ws = await accepted;
    const got = nextMessage(ws);
    client.write(frame({ opcode: Op.text, payload: 'plain' }));
    expect(await got).toEqual(['plain', false]);
  });

  it('over HTTP/2: handleH2Connect on the server, connect({ http2: true }) on the client', async () => {
    const server = http2.createSecureServer({ ...tls, settings: { enableConnectProtocol: true } });
    server.on('stream', (stream, headers) => {
      if (!isWebSocketConnect(headers)) return;
      handleH2Connect(stream, headers, { heartbeatInterval: 0, textAsBuffer: true }).then((ws) => {
        // Echo what arrived, saying what it was.
        ws?.on('message', (data, isBinary) => {
          ws.send(`${Buffer.isBuffer(data) ? 'buffer' : typeof data}:${isBinary}:${String(data)}`);
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const ws = await connect(`wss://localhost:${port}/`, {
      http2: true,
      tls: { ca: tls.cert },
      textAsBuffer: true,
    });
    cleanups.push(() => ws.terminate());
    expect(ws.transport).toBe('h2');
    const got = nextMessage(ws);
    await ws.send('über');
    const [reply, isBinary] = await got;
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect(isBinary).toBe(false);
    expect((reply as Buffer).toString('utf8')).toBe('buffer:false:über');
  });
});
