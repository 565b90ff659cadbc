import { Buffer } from 'node:buffer';
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  connect,
  createServer,
  IdleTimeoutError,
  lengthPrefixed,
  lines,
  PendingBytesExceededError,
  type Server,
} from '../src/index.js';
import { sleep, waitFor, within } from './helpers.js';

const servers: Server<any, any>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
});

async function rawClient(port: number): Promise<Socket> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  return socket;
}

describe('backpressure', () => {
  it('makes send() wait while the peer does not read, keeping outbound memory bounded', async () => {
    const highWaterMark = 64 * 1024;
    const frame = Buffer.alloc(16 * 1024, 7);
    let serverConn: Connection<Buffer, Uint8Array | string> | undefined;
    let sent = 0;
    let peakPending = 0;
    let producer: Promise<void> | undefined;
    const server = createServer({ codec: lengthPrefixed(), highWaterMark }, (conn) => {
      serverConn = conn;
      producer = (async () => {
        for (let i = 0; i < 4000; i++) {
          await conn.send(frame);
          sent++;
          peakPending = Math.max(peakPending, conn.pendingBytes);
        }
      })();
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const reader = await rawClient(port);
    reader.pause(); // a peer that does not read

    // Let the kernel buffers fill, then check the producer is stuck rather than buffering:
    // no progress over a whole 250 ms window (a descheduled producer would still move on later).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const before = sent;
      await sleep(250);
      if (sent === before && sent > 0) break;
      if (Date.now() > deadline) throw new Error('producer never stalled');
    }
    expect(sent).toBeLessThan(4000);
    expect(peakPending).toBeLessThanOrEqual(highWaterMark + frame.length + 4);
    expect(serverConn!.pendingBytes).toBeLessThanOrEqual(highWaterMark + frame.length + 4);

    // Reading resumes: everything arrives, the producer finishes.
    let received = 0;
    reader.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    reader.resume();
    await within(producer!, 20_000, 'producer to finish');
    await waitFor(() => received === 4000 * (frame.length + 4), 20_000, 'all bytes received');
    reader.destroy();
  });

  it('refuses messages beyond maxPendingBytes for producers that ignore backpressure', async () => {
    let result: unknown;
    const server = createServer({ codec: lengthPrefixed(), maxPendingBytes: 256 * 1024 }, (conn) => {
      try {
        for (let i = 0; i < 1000; i++) conn.write(Buffer.alloc(1024));
      } catch (error) {
        result = error;
      }
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const reader = await rawClient(port);
    reader.pause();
    await waitFor(() => result !== undefined);
    expect(result).toBeInstanceOf(PendingBytesExceededError);
    expect((result as PendingBytesExceededError).code).toBe('ERR_PENDING_BYTES_EXCEEDED');
    reader.destroy();
  });

  it('pauses a socket whose for-await consumer is slow instead of queueing without bound', async () => {
    const server = createServer({ codec: lines() }, async (conn) => {
      for (let i = 0; i < 20_000; i++) await conn.send(`line ${i}`);
      await conn.end();
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines(), maxQueuedMessages: 64 });
    await sleep(300); // nobody consumes yet: the queue fills and the socket is paused
    expect(client.socket.isPaused()).toBe(true);
    let count = 0;
    for await (const line of client) {
      expect(line).toBe(`line ${count}`);
      count++;
    }
    expect(count).toBe(20_000);
  });
});

describe('timeouts and closing', () => {
  it('closes an idle connection with ERR_IDLE_TIMEOUT after a timeout event', async () => {
    const events: string[] = [];
    let closeError: Error | undefined;
    const server = createServer({ codec: lines(), idleTimeout: 200 }, (conn) => {
      conn.on('timeout', () => {
        events.push('timeout');
        conn.write('bye: idle');
      });
      conn.on('error', (e) => events.push((e as IdleTimeoutError).code));
      conn.on('close', (e) => {
        closeError = e;
        events.push('close');
      });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    const got: string[] = [];
    for await (const line of client) got.push(line);
    expect(got).toEqual(['bye: idle']);
    await waitFor(() => events.includes('close'));
    expect(events).toEqual(['timeout', 'ERR_IDLE_TIMEOUT', 'close']);
    expect(closeError).toBeInstanceOf(IdleTimeoutError);
  });

  it('lets a connection change its own idle timeout', async () => {
    let serverConn: Connection<string, string | Uint8Array> | undefined;
    const server = createServer({ codec: lines(), idleTimeout: 100 }, (conn) => {
      serverConn = conn;
      conn.setIdleTimeout(0); // e.g. after a login: no idle limit for this one
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    await sleep(400);
    expect(serverConn?.state).toBe('open');
    expect(serverConn?.idleTimeout).toBe(0);
    serverConn!.setIdleTimeout(100);
    await within(client.closed, 10_000, 'idle close after re-enabling');
    expect(serverConn?.error).toMatchObject({ code: 'ERR_IDLE_TIMEOUT', timeout: 100 });
    expect(() => serverConn!.setIdleTimeout(-1)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });

  it('makes a for-await loop throw when the connection dies of an idle timeout', async () => {
    const server = createServer({ codec: lines() }, () => {});
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines(), idleTimeout: 150 });
    await expect(
      (async () => {
        for await (const _ of client) {
          // nothing arrives
        }
      })(),
    ).rejects.toMatchObject({ code: 'ERR_IDLE_TIMEOUT' });
  });

  it('server.close({ deadline }) stops accepting, lets connections finish, then ends the rest', async () => {
    const server = createServer({ codec: lines() }, (conn) => {
      conn.on('message', (l) => conn.write(`echo ${l}`));
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const polite = await connect({ port, host: '127.0.0.1', codec: lines() });
    const lingering = await connect({ port, host: '127.0.0.1', codec: lines() });
    await waitFor(() => server.connections.size === 2);

    const started = Date.now();
    const closing = server.close({ deadline: 600 });
    await expect(connect({ port, host: '127.0.0.1', codec: lines() })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    // Existing connections still work during the grace period.
    await polite.send('still served');
    expect((await polite[Symbol.asyncIterator]().next()).value).toBe('echo still served');
    await polite.end();

    const lingeringLines: string[] = [];
    for await (const l of lingering) lingeringLines.push(l); // ends when the server ends it
    await within(closing, 15_000, 'server close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(server.connections.size).toBe(0);
    expect(lingering.error).toBeUndefined();
  });

  it('server.close() resolves early when all connections finish before the deadline', async () => {
    const server = createServer({ codec: lines() }, () => {});
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    await waitFor(() => server.connections.size === 1);
    const started = Date.now();
    const closing = server.close({ deadline: 60_000 });
    setTimeout(() => void client.end(), 100);
    await within(closing, 20_000, 'server close');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('never cuts a message in half: pending data is flushed before the FIN', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 0xab);
    const server = createServer({ codec: lengthPrefixed() }, (conn) => {
      conn.write(big);
      void server.close({ deadline: 0 });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });
    const frames: Buffer[] = [];
    for await (const f of client) frames.push(f);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.equals(big)).toBe(true);
  });
});

describe('half-open and end vs destroy', () => {
  it('with allowHalfOpen the server can still answer after the client finished sending', async () => {
    const server = createServer({ codec: lines(), allowHalfOpen: true }, (conn) => {
      const received: string[] = [];
      conn.on('message', (l) => received.push(l));
      conn.on('end', () => {
        void conn.end(`got ${received.length}: ${received.join(',')}`);
      });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    client.write('a');
    client.write('b');
    const ending = client.end();
    expect(client.state).toBe('ending');
    const got: string[] = [];
    for await (const l of client) got.push(l);
    await within(ending, 10_000, 'client end');
    expect(got).toEqual(['got 2: a,b']);
  });

  it('without allowHalfOpen the connection closes itself after the peer FIN, flushing first', async () => {
    let serverConn: Connection<string, string | Uint8Array> | undefined;
    const server = createServer({ codec: lines() }, (conn) => {
      serverConn = conn;
      conn.on('end', () => {
        // Written during the peer's FIN handling: still delivered before our own FIN.
        conn.write('last words');
      });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const socket = await rawClient(port);
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.end();
    await within(new Promise((r) => socket.once('close', r)), 10_000, 'client close');
    expect(text).toBe('last words\n');
    await waitFor(() => serverConn?.state === 'closed');
  });

  it('destroy() drops unsent data immediately; reset() makes the peer see ECONNRESET', async () => {
    const conns: Connection<string, string | Uint8Array>[] = [];
    const server = createServer({ codec: lines() }, (conn) => void conns.push(conn));
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const a = await connect({ port, host: '127.0.0.1', codec: lines() });
    const b = await connect({ port, host: '127.0.0.1', codec: lines() });
    await waitFor(() => conns.length === 2);

    conns[0]!.write('never sent');
    conns[0]!.destroy();
    const aLines: string[] = [];
    for await (const l of a) aLines.push(l);
    expect(aLines).toEqual([]);

    const bErrors: Error[] = [];
    b.on('error', (e) => bErrors.push(e));
    conns[1]!.reset();
    await within(b.closed, 10_000, 'b closed');
    expect(bErrors.map((e) => (e as NodeJS.ErrnoException).code)).toContain('ECONNRESET');
  });

  it('reports a stream that ends mid-frame as ERR_TRUNCATED_FRAME', async () => {
    let closeError: Error | undefined;
    const server = createServer({ codec: lengthPrefixed() }, (conn) => {
      conn.on('close', (e) => {
        closeError = e;
      });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const socket = await rawClient(port);
    socket.end(Buffer.from([0, 0, 0, 10, 1, 2, 3]));
    await waitFor(() => closeError !== undefined);
    expect(closeError).toMatchObject({ code: 'ERR_TRUNCATED_FRAME' });
  });
});
