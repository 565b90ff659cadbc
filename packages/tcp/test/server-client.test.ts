import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Socket, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  connect,
  createServer,
  FrameTooLargeError,
  lengthPrefixed,
  lines,
  type Server,
  type TooManyConnectionsError,
} from '../src/index.js';
import { sleep, waitFor, within } from './helpers.js';

const servers: Server<unknown, never>[] = [];
function track<S extends Server<any, any>>(server: S): S {
  servers.push(server as unknown as Server<unknown, never>);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
});

describe('server and client over loopback', () => {
  it('echoes lines through for-await on both sides', async () => {
    const server = track(
      createServer({ codec: lines() }, async (conn) => {
        for await (const line of conn) await conn.send(line.toUpperCase());
      }),
    );
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    await client.send('hello');
    await client.send('wörld 🌍');
    const got: string[] = [];
    for await (const line of client) {
      got.push(line);
      if (got.length === 2) break;
    }
    expect(got).toEqual(['HELLO', 'WÖRLD 🌍']);
    await within(client.end(), 10_000, 'client end');
    expect(client.state).toBe('closed');
    expect(client.error).toBeUndefined();
  });

  it('serves many concurrent clients, each getting exactly its own replies in order', async () => {
    const server = track(
      createServer({ codec: lengthPrefixed() }, (conn) => {
        conn.on('message', (frame) => conn.write(frame));
      }),
    );
    const { port } = await server.listen({ host: '127.0.0.1' });
    const clients = 40;
    const perClient = 50;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const conn = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });
        const expected = Array.from(
          { length: perClient },
          (_, i) => `client ${c} message ${i} ${'x'.repeat(i * 7)}`,
        );
        for (const m of expected) conn.write(m);
        const got: string[] = [];
        for await (const frame of conn) {
          got.push(frame.toString());
          if (got.length === perClient) break;
        }
        expect(got).toEqual(expected);
        await conn.end();
      }),
    );
    await waitFor(() => server.connections.size === 0, 10_000, 'server connections to close');
  });

  it('keeps order when tiny, medium and large messages and raw writes are interleaved', async () => {
    const sizes = [1, 70_000, 3, 5_000, 0, 200_000, 10, 1_000, 65_536, 2];
    const server = track(
      createServer({ codec: lengthPrefixed() }, (conn) => {
        conn.on('message', (m) => conn.write(m));
      }),
    );
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });
    const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    for (const [i, m] of sent.entries()) {
      if (i === 4)
        client.writeRaw(Buffer.from([0, 0, 0, 0])); // a hand-made empty frame
      else client.write(m);
    }
    const got: Buffer[] = [];
    for await (const m of client) {
      got.push(m);
      if (got.length === sent.length) break;
    }
    expect(got.map((m) => m.length)).toEqual(sizes);
    expect(got.every((m, i) => m.equals(sent[i]!))).toBe(true);
    client.destroy();
  });

  it('keeps each connection intact when writes to several connections interleave in one tick', async () => {
    const conns: Connection<Buffer, Uint8Array | string>[] = [];
    const server = track(createServer({ codec: lengthPrefixed() }, (conn) => void conns.push(conn)));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const clients = await Promise.all(
      [0, 1, 2].map(() => connect({ port, host: '127.0.0.1', codec: lengthPrefixed() })),
    );
    await waitFor(() => conns.length === 3);
    const count = 3000; // crosses several encode pools
    for (let i = 0; i < count; i++) {
      for (const [c, conn] of conns.entries()) conn.write(`conn ${c} message ${i} ${'y'.repeat(i % 50)}`);
    }
    const results = await Promise.all(
      clients.map(async (client) => {
        const got: string[] = [];
        for await (const m of client) {
          got.push(m.toString());
          if (got.length === count) break;
        }
        return got;
      }),
    );
    const c0 = conns.findIndex((c) => c.remotePort === clients[0]!.localPort);
    results.forEach((got, k) => {
      const c = conns.findIndex((conn) => conn.remotePort === clients[k]!.localPort);
      expect(got).toEqual(
        Array.from({ length: count }, (_, i) => `conn ${c} message ${i} ${'y'.repeat(i % 50)}`),
      );
    });
    expect(c0).toBeGreaterThanOrEqual(0);
    for (const client of clients) client.destroy();
  });

  it('delivers messages that arrive before anyone listens (queued, not lost)', async () => {
    const server = track(
      createServer({ codec: lines() }, (conn) => {
        conn.write('one');
        conn.write('two');
        conn.write('three');
      }),
    );
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    await sleep(200);
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      client.on('message', (line) => {
        got.push(line);
        if (got.length === 3) resolve();
      });
    });
    expect(got).toEqual(['one', 'two', 'three']);
    client.destroy();
  });

  it('writes a raw greeting before any framed message', async () => {
    const server = track(
      createServer({ codec: lines() }, (conn) => {
        conn.writeRaw('Welcome! type a line\r\n');
        conn.write('ready');
      }),
    );
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    const it = client[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('Welcome! type a line');
    expect((await it.next()).value).toBe('ready');
    client.destroy();
  });

  it('closes only the offending connection on a protocol error; the server keeps serving', async () => {
    const errors: Error[] = [];
    const server = track(
      createServer({ codec: lengthPrefixed({ maxFrameLength: 1024 }) }, (conn) => {
        conn.on('message', (m) => conn.write(m));
      }),
    );
    server.on('connectionError', (e) => errors.push(e));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const good = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });

    const bad = netConnect({ port, host: '127.0.0.1' });
    await new Promise((r) => bad.once('connect', r));
    bad.write(Buffer.from([0x7f, 0xff, 0xff, 0xff])); // announces a 2 GiB frame
    await within(new Promise((r) => bad.once('close', r)), 10_000, 'bad client closed');
    expect(errors.some((e) => e instanceof FrameTooLargeError)).toBe(true);

    await good.send('still here');
    const it = good[Symbol.asyncIterator]();
    expect(String((await it.next()).value)).toBe('still here');
    good.destroy();
  });

  it('closes a connection whose handler throws, without touching the server', async () => {
    let accepted = 0;
    const server = track(
      createServer({ codec: lines() }, (conn) => {
        if (++accepted === 1) throw new Error('handler bug');
        conn.write('ok');
      }),
    );
    const handlerErrors: Error[] = [];
    server.on('connectionError', (e) => handlerErrors.push(e));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const first = await connect({ port, host: '127.0.0.1', codec: lines() });
    await within(first.closed, 10_000, 'first closed');
    expect(handlerErrors.map((e) => e.message)).toEqual(['handler bug']);
    const second = await connect({ port, host: '127.0.0.1', codec: lines() });
    expect((await second[Symbol.asyncIterator]().next()).value).toBe('ok');
    second.destroy();
  });

  it('refuses connections beyond maxConnections and can tell the client why', async () => {
    const server = track(createServer({ codec: lines(), maxConnections: 2 }, () => {}));
    const rejected: TooManyConnectionsError[] = [];
    server.on('rejected', (error, socket) => {
      rejected.push(error);
      socket.write('server full\n');
    });
    const { port } = await server.listen({ host: '127.0.0.1' });
    const a = await connect({ port, host: '127.0.0.1', codec: lines() });
    const b = await connect({ port, host: '127.0.0.1', codec: lines() });
    await waitFor(() => server.connections.size === 2);
    const c = await connect({ port, host: '127.0.0.1', codec: lines() });
    const got: string[] = [];
    for await (const line of c) got.push(line);
    expect(got).toEqual(['server full']);
    expect(rejected[0]?.code).toBe('ERR_TOO_MANY_CONNECTIONS');
    a.destroy();
    b.destroy();
  });

  it('works over a Unix domain socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-tcp-'));
    try {
      const path = join(dir, 's.sock');
      const server = track(
        createServer({ codec: lines() }, (conn) => conn.on('message', (l) => conn.write(`unix:${l}`))),
      );
      expect(await server.listen({ path })).toBe(path);
      const client = await connect({ path, codec: lines() });
      await client.send('hi');
      expect((await client[Symbol.asyncIterator]().next()).value).toBe('unix:hi');
      await client.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects connect() with ECONNREFUSED for a closed port and ERR_CONNECT_TIMEOUT for a silent TLS peer', async () => {
    const probe = track(createServer({ codec: lines() }));
    const { port } = await probe.listen({ host: '127.0.0.1' });
    await probe.close({ deadline: 0 });
    await expect(connect({ port, host: '127.0.0.1', codec: lines() })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });

    // A plain TCP server that never answers the TLS ClientHello.
    const silent = track(createServer({ codec: lines(), idleTimeout: 0 }));
    const { port: silentPort } = await silent.listen({ host: '127.0.0.1' });
    await expect(
      connect({ port: silentPort, host: '127.0.0.1', codec: lines(), tls: {}, connectTimeout: 300 }),
    ).rejects.toMatchObject({ code: 'ERR_CONNECT_TIMEOUT' });

    const controller = new AbortController();
    const pending = connect({
      port: silentPort,
      host: '127.0.0.1',
      codec: lines(),
      tls: {},
      signal: controller.signal,
    });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('broadcasts to every open connection', async () => {
    const conns: Connection<string, string | Uint8Array>[] = [];
    const server = track(createServer({ codec: lines() }, (conn) => void conns.push(conn)));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const clients = await Promise.all(
      [1, 2, 3].map(() => connect({ port, host: '127.0.0.1', codec: lines() })),
    );
    await waitFor(() => conns.length === 3);
    expect(server.broadcast('news', (c) => c !== conns[0])).toBe(2);
    const received = await Promise.all(
      clients.slice(1).map(async (c) => (await c[Symbol.asyncIterator]().next()).value),
    );
    expect(received).toEqual(['news', 'news']);
    for (const c of clients) c.destroy();
  });

  it('rejects misuse with typed errors: bad options, double listen, two iterators', async () => {
    expect(() => createServer({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createServer({ codec: lines(), highWaterMark: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', option: 'highWaterMark' }),
    );
    await expect(connect({ codec: lines(), port: 70_000 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    const server = track(createServer({ codec: lines() }, () => {}));
    const { port } = await server.listen({ host: '127.0.0.1' });
    await expect(server.listen({ host: '127.0.0.1' })).rejects.toMatchObject({ code: 'ERR_SERVER_STATE' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines() });
    client[Symbol.asyncIterator]();
    expect(() => client[Symbol.asyncIterator]()).toThrow(
      expect.objectContaining({ code: 'ERR_ITERATOR_ACTIVE' }),
    );
    client.destroy();
  });

  it('sends the codec error to the caller and keeps the connection usable', async () => {
    const server = track(createServer({ codec: lines({ maxLineLength: 10 }) }, () => {}));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = await connect({ port, host: '127.0.0.1', codec: lines({ maxLineLength: 10 }) });
    await expect(client.send('x'.repeat(11))).rejects.toMatchObject({ code: 'ERR_LINE_TOO_LONG' });
    await expect(client.send('a\nb')).rejects.toMatchObject({ code: 'ERR_INVALID_FRAME' });
    expect(client.state).toBe('open');
    await client.end();
    await expect(client.send('late')).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });
});

export type { Socket };

describe('hostile input', () => {
  it('survives many clients sending random garbage, keeping buffers bounded and serving others', async () => {
    const maxFrameLength = 4096;
    let peakBuffered = 0;
    const server = createServer({ codec: lengthPrefixed({ maxFrameLength }) }, (conn) => {
      conn.on('message', (m) => conn.write(m));
      const timer = setInterval(() => {
        peakBuffered = Math.max(peakBuffered, conn.bufferedBytes);
      }, 5);
      conn.on('close', () => clearInterval(timer));
    });
    servers.push(server as unknown as Server<unknown, never>);
    const { port } = await server.listen({ host: '127.0.0.1' });

    const garbage = Array.from({ length: 20 }, async (_, i) => {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      await new Promise((r) => socket.once('connect', r));
      // Deterministic pseudo-random bytes, a different stream per client.
      let seed = i * 7919 + 1;
      const bytes = Buffer.alloc(64 * 1024);
      for (let k = 0; k < bytes.length; k++) {
        seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
        bytes[k] = seed >> 16;
      }
      socket.end(bytes);
      await within(new Promise((r) => socket.once('close', r)), 15_000, `garbage client ${i} closed`);
    });
    await Promise.all(garbage);
    expect(peakBuffered).toBeLessThanOrEqual(maxFrameLength);

    const good = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed() });
    await good.send('still serving');
    expect(String((await good[Symbol.asyncIterator]().next()).value)).toBe('still serving');
    good.destroy();
  });
});
