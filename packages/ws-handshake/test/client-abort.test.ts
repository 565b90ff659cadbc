import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, connect, HandshakeTimeoutError } from '../src/index.js';
import { echoServer, withTimeout } from './helpers.js';

// connect(): AbortSignal, handshake timeout, textAsBuffer.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A TCP server that accepts and never answers: the handshake can only end by abort or timeout. */
async function silentServer(): Promise<{ port: number; closed: Promise<void> }> {
  let onClosed!: () => void;
  const closed = new Promise<void>((r) => (onClosed = r));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', onClosed);
    socket.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as net.AddressInfo).port, closed };
}

describe('connect() with an AbortSignal', () => {
  it('rejects at once with AbortedError when the signal is already aborted', async () => {
    const reason = new Error('user left');
    const error = await connect('ws://127.0.0.1:1', { signal: AbortSignal.abort(reason) }).catch((e) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.code).toBe('ERR_WS_ABORTED');
    expect(error.cause).toBe(reason);
  });

  it('aborts a handshake in progress and closes the socket', async () => {
    const { port, closed } = await silentServer();
    const controller = new AbortController();
    const started = Date.now();
    const pending = connect(`ws://127.0.0.1:${port}`, { signal: controller.signal, timeout: 30_000 });
    setTimeout(() => controller.abort(), 100);
    const error = await withTimeout(
      pending.catch((e) => e),
      10_000,
      'abort',
    );
    expect(error).toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(10_000);
    await withTimeout(closed, 10_000, 'server saw the socket close');
  });

  it('has no effect once the connection is open', async () => {
    const { server, port } = await echoServer({ heartbeatInterval: 0 });
    cleanups.push(() => server.close());
    const controller = new AbortController();
    const ws = await connect(`ws://127.0.0.1:${port}`, { signal: controller.signal });
    controller.abort();
    const reply = new Promise((resolve) => ws.once('message', resolve));
    await ws.send('still open');
    expect(await withTimeout(reply, 10_000, 'echo')).toBe('still open');
    await ws.close();
  });
});

describe('connect() handshake timeout', () => {
  it('handshakeTimeout (the ws name) fails a silent server with HandshakeTimeoutError', async () => {
    const { port, closed } = await silentServer();
    const started = Date.now();
    const error = await connect(`ws://127.0.0.1:${port}`, { handshakeTimeout: 200 }).catch((e) => e);
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    expect(error.code).toBe('ERR_WS_HANDSHAKE_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(5_000);
    await withTimeout(closed, 10_000, 'server saw the socket close');
  });
});

describe('connect() textAsBuffer', () => {
  it('delivers text as a UTF-8 Buffer with isBinary false', async () => {
    const { server, port } = await echoServer({ heartbeatInterval: 0 });
    cleanups.push(() => server.close());
    const ws = await connect(`ws://127.0.0.1:${port}`, { textAsBuffer: true });
    const reply = new Promise<[unknown, boolean]>((resolve) => ws.once('message', (d, b) => resolve([d, b])));
    await ws.send('ünïcode');
    const [data, isBinary] = await withTimeout(reply, 10_000, 'echo');
    expect(Buffer.isBuffer(data)).toBe(true);
    expect((data as Buffer).toString()).toBe('ünïcode');
    expect(isBinary).toBe(false);
    await ws.close();
  });
});
