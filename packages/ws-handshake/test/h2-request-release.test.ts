import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  handleH2Connect,
  isWebSocketConnect,
  type WebSocket,
  WebSocketServer,
} from '../src/index.js';
import { makeCert } from './h2-helpers.js';

// The request view an HTTP/2 WebSocket's hooks and `connection` event receive (with its copy of
// the headers) is cached per stream only while the handshake runs: once it is over, an open
// WebSocket must not keep it alive.

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let tls: { key: Buffer; cert: Buffer };
beforeAll(() => {
  tls = makeCert();
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function listen(server: http2.Http2SecureServer): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  return `wss://localhost:${(server.address() as AddressInfo).port}/`;
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

describe('HTTP/2 request views are released after the handshake', () => {
  it('WebSocketServer.attachH2: the connection event’s request is collectable while the socket is open', async () => {
    const server = http2.createSecureServer({ ...tls, settings: { enableConnectProtocol: true } });
    const wss = new WebSocketServer({ heartbeatInterval: 0 });
    wss.attachH2(server);
    cleanups.push(() => wss.close());
    let ref: WeakRef<object> | undefined;
    let accepted: WebSocket | undefined;
    wss.on('connection', (ws, req) => {
      ref = new WeakRef(req);
      accepted = ws;
    });
    const url = await listen(server);
    const client = await connect(url, { http2: true, tls: { ca: tls.cert } });
    cleanups.push(() => client.terminate());
    await new Promise((r) => setTimeout(r, 20));
    expect(ref).toBeDefined();
    expect(await collected(ref!)).toBe(true);
    expect(accepted!.readyState).toBe(1);
  });

  it('handleH2Connect: the view authorize saw is collectable while the socket is open', async () => {
    const server = http2.createSecureServer({ ...tls, settings: { enableConnectProtocol: true } });
    let ref: WeakRef<object> | undefined;
    let accepted: WebSocket | null = null;
    server.on('stream', (stream, headers) => {
      if (!isWebSocketConnect(headers)) return;
      handleH2Connect(stream, headers, {
        heartbeatInterval: 0,
        authorize: (req) => {
          ref = new WeakRef(req);
          return true;
        },
      }).then((ws) => {
        accepted = ws;
      });
    });
    const url = await listen(server);
    const client = await connect(url, { http2: true, tls: { ca: tls.cert } });
    cleanups.push(() => client.terminate());
    await new Promise((r) => setTimeout(r, 20));
    expect(ref).toBeDefined();
    expect(await collected(ref!)).toBe(true);
    expect((accepted as WebSocket | null)?.readyState).toBe(1);
  });
});
