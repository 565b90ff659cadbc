import { once } from 'node:events';
import { get as httpsGet } from 'node:https';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createServer, request } from '../src/index.js';
import { describeWithPeers } from '../../../test-support/peers.js';
import { raw, selfSignedCert, statusOf } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('graceful close', () => {
  it('lets an in-flight request finish, then refuses new connections', async () => {
    const app = createServer();
    let closingSeen = false;
    app.on('closing', () => (closingSeen = true));
    app.get('/slow', async () => {
      await sleep(300);
      return { done: true };
    });
    const { port } = await app.listen(0, '127.0.0.1');
    const inflight = fetch(`http://127.0.0.1:${port}/slow`);
    await sleep(100);
    const closed = app.close({ deadline: 5000 });
    expect(closingSeen).toBe(true);
    const res = await inflight;
    expect(await res.json()).toEqual({ done: true });
    await closed;
    await expect(fetch(`http://127.0.0.1:${port}/slow`)).rejects.toThrow();
    expect(app.close()).toBe(closed);
  });

  it('closes idle keep-alive connections right away instead of waiting for keepAliveTimeout', async () => {
    const app = createServer({ keepAliveTimeout: 30_000 });
    app.get('/', () => 'hi');
    const { port } = await app.listen(0, '127.0.0.1');
    const socket = connect(port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'data');
    const started = Date.now();
    const socketClosed = once(socket, 'close');
    await app.close({ deadline: 10_000 });
    await socketClosed;
    // keepAliveTimeout is 30 s: anything well under it shows the idle socket was closed on purpose.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('tells keep-alive clients to go away when a request arrives during shutdown', async () => {
    const app = createServer();
    app.get('/slow', async () => {
      await sleep(400);
      return 'slow';
    });
    app.get('/fast', () => 'fast');
    const { port } = await app.listen(0, '127.0.0.1');
    const slow = fetch(`http://127.0.0.1:${port}/slow`);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    // A connection that is busy with a request is not idle, so it survives close(): its next
    // request must carry Connection: close.
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100);
    const closed = app.close({ deadline: 5000 });
    socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    let data = '';
    socket.on('data', (d) => (data += d));
    await once(socket, 'close');
    expect(data).toContain('slow');
    expect(data).toMatch(/Connection: close\r\n[\s\S]*fast$/i);
    await slow;
    await closed;
  });

  it('destroys requests still running at the deadline', async () => {
    const app = createServer();
    app.get('/hang', () => new Promise(() => {}));
    const { port } = await app.listen(0, '127.0.0.1');
    const pending = raw(port, ['GET /hang HTTP/1.1\r\nHost: x\r\n\r\n'], 10_000);
    await sleep(100);
    const started = Date.now();
    await app.close({ deadline: 300 });
    const r = await pending;
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses to listen after close', async () => {
    const app = createServer();
    await app.listen(0, '127.0.0.1');
    await app.close();
    await expect(app.listen(0)).rejects.toMatchObject({ code: 'ERR_HTTP_SERVER_STATE' });
  });
});

describeWithPeers(['openssl'], 'https', () => {
  it('serves the same routes over TLS and the client trusts a given CA', async () => {
    const { key, cert } = selfSignedCert();
    const app = createServer({ tls: { key, cert } });
    app.get('/secure/:id', (ctx) => ({ id: ctx.params.id, encrypted: 'encrypted' in ctx.req.socket }));
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const res = await request(`https://127.0.0.1:${port}/secure/42`, { tls: { ca: cert } });
      expect(await res.json()).toEqual({ id: '42', encrypted: true });
      // Without the CA the certificate is rejected, as it must be.
      await expect(request(`https://127.0.0.1:${port}/secure/1`, { retries: 0 })).rejects.toMatchObject({
        code: 'ERR_HTTP_CLIENT_CONNECTION',
      });
      // Plain HTTP to the TLS port is not served.
      const r = await raw(port, ['GET /secure/1 HTTP/1.1\r\nHost: x\r\n\r\n']);
      expect(statusOf(r.data)).not.toBe(200);
    } finally {
      await app.close({ deadline: 500 });
    }
  });
});

describe('socket inactivity', () => {
  it('destroys a connection whose response stalls, but not an upgraded socket', async () => {
    const app = createServer({ socketTimeout: 400 });
    app.get('/stall', () => new Readable({ read() {} }));
    app.upgrade('/up', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n');
    });
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const stalled = await raw(port, ['GET /stall HTTP/1.1\r\nHost: x\r\n\r\n'], 10_000);
      expect(stalled.closed).toBe(true);
      expect(stalled.elapsed).toBeGreaterThanOrEqual(300);
      const upgraded = await raw(
        port,
        ['GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n'],
        1500,
      );
      expect(statusOf(upgraded.data)).toBe(101);
      expect(upgraded.closed).toBe(false);
    } finally {
      await app.close({ deadline: 200 });
    }
  });

  it('keeps a slow response that still moves bytes, and an idle connection between requests', async () => {
    const app = createServer({ socketTimeout: 400, keepAliveTimeout: 10_000 });
    // 12 chunks 100 ms apart: 1.2 s in all, three times the limit, never 400 ms silent.
    app.get('/trickle', () => {
      let left = 12;
      return new Readable({
        read() {
          if (left-- > 0) setTimeout(() => this.push('x'), 100);
          else this.push(null);
        },
      });
    });
    app.get('/hello', () => ({ hello: 'world' }));
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const slow = await raw(port, ['GET /trickle HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 10_000);
      expect(statusOf(slow.data)).toBe(200);
      // Chunked: twelve one-byte chunks, then the terminating chunk.
      expect(slow.data.match(/\r\n1\r\nx/g)?.length).toBe(12);
      expect(slow.data.endsWith('0\r\n\r\n')).toBe(true);
      expect(slow.elapsed).toBeGreaterThanOrEqual(1000);
      // Silent for 250 ms between requests (under the limit): the second request is still served.
      const two = await raw(
        port,
        ['GET /hello HTTP/1.1\r\nHost: x\r\n\r\n', 250, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n'],
        1500,
      );
      expect(two.data.match(/HTTP\/1\.1 200/g)?.length).toBe(2);
      // Then silent past the limit: closed by the sweep, long before the 10 s keep-alive timeout.
      expect(two.closed).toBe(true);
    } finally {
      await app.close({ deadline: 200 });
    }
  });
});

describe('keep-alive timeout', () => {
  it('announces Keep-Alive: timeout and closes a connection idle that long plus a grace second', async () => {
    const app = createServer({ keepAliveTimeout: 1000 });
    app.get('/hello', () => ({ hello: 'world' }));
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const idle = await raw(port, ['GET /hello HTTP/1.1\r\nHost: x\r\n\r\n'], 6000);
      expect(statusOf(idle.data)).toBe(200);
      expect(idle.data.toLowerCase()).toContain('\r\nkeep-alive: timeout=1\r\n');
      expect(idle.closed).toBe(true);
      // 1 s announced + 1 s grace, found by a sweep every 500 ms; never before the announced second.
      expect(idle.elapsed).toBeGreaterThanOrEqual(1000);
      expect(idle.elapsed).toBeLessThan(5000);
      // A slow handler is not an idle connection: still answered after the keep-alive time.
      app.get('/slow', async () => {
        await sleep(3500);
        return { slow: true };
      });
      const slow = await raw(port, ['GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 8000);
      expect(statusOf(slow.data)).toBe(200);
    } finally {
      await app.close({ deadline: 200 });
    }
  });
});

describeWithPeers(['openssl'], 'socket inactivity over TLS', () => {
  it('destroys a TLS connection whose response stalls', async () => {
    const { key, cert } = selfSignedCert();
    const app = createServer({ tls: { key, cert }, socketTimeout: 400 });
    app.get('/stall', () => new Readable({ read() {} }));
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const started = Date.now();
      const outcome = await new Promise<string>((resolve) => {
        const req = httpsGet({ host: '127.0.0.1', port, path: '/stall', ca: cert, agent: false }, (res) => {
          res.on('data', () => {});
          res.on('error', () => resolve('closed'));
          res.on('close', () => resolve(res.complete ? 'complete' : 'closed'));
        });
        req.on('error', () => resolve('closed'));
        setTimeout(() => resolve('open'), 5000).unref();
      });
      expect(outcome).toBe('closed');
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    } finally {
      await app.close({ deadline: 200 });
    }
  });
});
