import { once } from 'node:events';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type TunnelTarget } from '../src/index.js';
import { raw, statusOf } from './helpers.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('upgrade dispatch', () => {
  let app: Server;
  let port: number;
  const upgradeErrors: unknown[] = [];

  beforeAll(async () => {
    app = createServer();
    app.on('upgradeError', (err) => upgradeErrors.push(err));
    app.get('/chat', () => 'plain GET still works');
    app.upgrade('/chat/:room', (req, socket, head, params) => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\nroom=${params.room};head=${head.toString()};`,
      );
      socket.pipe(socket);
    });
    app.upgrade('/broken', () => {
      throw new Error('handler bug');
    });
    ({ port } = await app.listen(0, '127.0.0.1'));
  });

  afterAll(() => app.close({ deadline: 200 }));

  it('hands the socket, head and params to the registered handler', async () => {
    const r = await raw(
      port,
      [
        'GET /chat/lobby HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly',
        100,
        'ping',
      ],
      800,
    );
    expect(statusOf(r.data)).toBe(101);
    expect(r.data).toContain('room=lobby;head=early;');
    expect(r.data.endsWith('ping')).toBe(true);
  });

  it('answers 404 and closes for an unknown upgrade path', async () => {
    const r = await raw(port, [
      'GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(404);
    expect(r.closed).toBe(true);
  });

  it('answers 400 and closes for a non-GET upgrade', async () => {
    const r = await raw(port, [
      'POST /chat/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(400);
    expect(r.closed).toBe(true);
  });

  it('answers 500 and reports upgradeError when the handler throws', async () => {
    const r = await raw(port, [
      'GET /broken HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(500);
    expect(r.closed).toBe(true);
    expect(upgradeErrors).toHaveLength(1);
  });

  it('serves ordinary requests on the same path prefix', async () => {
    expect(await (await fetch(`http://127.0.0.1:${port}/chat`)).text()).toBe('plain GET still works');
  });
});

describe('CONNECT tunnel', () => {
  let echo: ReturnType<typeof createNetServer>;
  let echoPort: number;

  beforeAll(async () => {
    echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as { port: number }).port;
  });

  afterAll(() => new Promise<void>((r) => echo.close(() => r())));

  async function withProxy(
    options: Parameters<typeof createServer>[0],
    fn: (port: number, app: Server) => Promise<void>,
  ): Promise<void> {
    const app = createServer(options);
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      await fn(port, app);
    } finally {
      await app.close({ deadline: 200 });
    }
  }

  it('answers 405 when no tunnel policy is configured', async () => {
    await withProxy({}, async (port) => {
      const r = await raw(port, [
        `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`,
      ]);
      expect(statusOf(r.data)).toBe(405);
      expect(r.closed).toBe(true);
    });
  });

  it('denies by default and for targets outside the allowlist', async () => {
    await withProxy({ connect: {} }, async (port) => {
      const r = await raw(port, [`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusOf(r.data)).toBe(403);
    });
    await withProxy({ connect: { allow: ['127.0.0.1:1', '*.example.com:443'] } }, async (port) => {
      const r = await raw(port, [`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusOf(r.data)).toBe(403);
    });
  });

  it('answers 400 to a malformed target', async () => {
    await withProxy({ connect: { allow: ['127.0.0.1:*'] } }, async (port) => {
      for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '[zz]:80', 'a b:80']) {
        const r = await raw(port, [`CONNECT ${bad} HTTP/1.1\r\nHost: x\r\n\r\n`]);
        expect([400]).toContain(statusOf(r.data));
      }
    });
  });

  it('tunnels bytes both ways to an allowed target, including the head', async () => {
    const seen: TunnelTarget[] = [];
    await withProxy({ connect: { allow: [`127.0.0.1:${echoPort}`] } }, async (port, app) => {
      app.on('tunnel', (t) => seen.push(t));
      const r = await raw(
        port,
        [`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\nfirst-`, 100, 'second'],
        800,
      );
      expect(r.data.startsWith('HTTP/1.1 200 Connection Established\r\n\r\n')).toBe(true);
      expect(r.data).toContain('first-');
      expect(r.data.endsWith('second')).toBe(true);
    });
    expect(seen).toEqual([{ host: '127.0.0.1', port: echoPort }]);
  });

  it('asks an async predicate and answers 502 when the target refuses', async () => {
    const dead = await freePort();
    await withProxy({ connect: { allow: async (t) => t.host === '127.0.0.1' } }, async (port) => {
      const r = await raw(port, [`CONNECT 127.0.0.1:${dead} HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusOf(r.data)).toBe(502);
      const denied = await raw(port, [`CONNECT localhost:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusOf(denied.data)).toBe(403);
    });
  });

  it('serves over IPv6 and tunnels to an allowlisted [::1] target', async () => {
    const echo6 = createNetServer((sock) => sock.pipe(sock));
    await new Promise<void>((r) => echo6.listen(0, '::1', r));
    const port6 = (echo6.address() as { port: number }).port;
    const app = createServer({ connect: { allow: [`[::1]:${port6}`] } });
    app.get('/', () => 'v6');
    const { port, family } = await app.listen(0, '::1');
    try {
      expect(family).toBe('IPv6');
      expect(await (await fetch(`http://[::1]:${port}/`)).text()).toBe('v6');
      const r = await new Promise<string>((resolve) => {
        const sock = connect(port, '::1');
        let data = '';
        sock.on('data', (d) => {
          data += d;
          if (data.endsWith('ping6')) sock.destroy();
        });
        sock.on('close', () => resolve(data));
        sock.write(`CONNECT [::1]:${port6} HTTP/1.1\r\nHost: x\r\n\r\nping6`);
        setTimeout(() => sock.destroy(), 3000);
      });
      expect(r.startsWith('HTTP/1.1 200 Connection Established')).toBe(true);
      expect(r.endsWith('ping6')).toBe(true);
    } finally {
      await app.close({ deadline: 200 });
      await new Promise<void>((r) => echo6.close(() => r()));
    }
  });

  it('destroys open tunnels at the close deadline', async () => {
    const app = createServer({ connect: { allow: [`127.0.0.1:${echoPort}`] } });
    const { port } = await app.listen(0, '127.0.0.1');
    const client: Socket = connect(port, '127.0.0.1');
    client.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await once(client, 'data');
    const started = Date.now();
    const closed = once(client, 'close');
    client.on('error', () => {});
    await app.close({ deadline: 300 });
    await closed;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
