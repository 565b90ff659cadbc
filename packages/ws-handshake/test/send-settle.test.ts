import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionClosedError,
  connect,
  createWebSocketServer,
  type WebSocket,
  type WebSocketServer,
} from '../src/index.js';
import { rawClient, waitFor } from './helpers.js';

/*
 * send() promises are not given a `.catch()` each (that cost every message a second promise and a
 * microtask); the handler is attached only when one is rejected. These tests pin the contract that
 * change must keep: sends still waiting when the connection dies reject with
 * ConnectionClosedError, and the ones nobody awaited never surface as unhandled rejections.
 */
describe('send() promises when the connection dies with writes pending', () => {
  let server: WebSocketServer;
  let port: number;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(async () => {
    server = await createWebSocketServer({
      port: 0,
      host: '127.0.0.1',
      heartbeatInterval: 0,
      maxBufferedAmount: 64 * 1024 * 1024,
      perMessageDeflate: true,
    });
    port = server.port!;
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  });
  afterEach(() => {
    unhandled.length = 0;
  });

  /** Lets Node's unhandled-rejection check (end of the tick queue) and a timer turn pass. */
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('rejects in-flight writes to a peer that stopped reading, ignored ones stay handled', async () => {
    const accepted = new Promise<WebSocket>((r) => server.once('connection', r));
    const client = await rawClient(port);
    client.socket.pause(); // never read: the writes below stay in the socket's buffer
    const ws = await accepted;
    const chunk = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 96; i++) ws.send(chunk); // fire and forget
    const awaited = ws.send(chunk);
    await waitFor(() => ws.bufferedAmount > 1024 * 1024, 5000, 'writes pending');
    ws.terminate();
    await expect(awaited).rejects.toBeInstanceOf(ConnectionClosedError);
    await settle();
    expect(unhandled).toEqual([]);
    client.socket.destroy();
  });

  it('rejects sends queued behind a compression, ignored ones stay handled', async () => {
    const accepted = new Promise<WebSocket>((r) => server.once('connection', r));
    const client = await connect(`ws://127.0.0.1:${port}`, { perMessageDeflate: true, heartbeatInterval: 0 });
    const ws = await accepted;
    expect(ws.extensions).toContain('permessage-deflate');
    const text = 'compress me '.repeat(4096);
    ws.send(text); // starts compressing; the next ones wait in the queue
    ws.send(text);
    ws.ping('p');
    const awaited = ws.send(text);
    ws.terminate();
    await expect(awaited).rejects.toBeInstanceOf(ConnectionClosedError);
    await settle();
    expect(unhandled).toEqual([]);
    client.terminate();
  });

  it('still resolves sends that were written', async () => {
    const accepted = new Promise<WebSocket>((r) => server.once('connection', r));
    const client = await connect(`ws://127.0.0.1:${port}`, { heartbeatInterval: 0 });
    const ws = await accepted;
    const got = new Promise((r) => client.once('message', r));
    await expect(ws.send('hello')).resolves.toBeUndefined();
    expect(await got).toBe('hello');
    await client.close();
  });
});
