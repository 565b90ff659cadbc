import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Context, createServer, HttpError, type Server, serveStatic } from '../src/index.js';
import { raw, statusOf } from './helpers.js';

describe('non-canonical paths cannot bypass a path hook', () => {
  let app: Server;
  let port: number;
  const seen: { path: string; url: string; param: string | undefined }[] = [];

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'net-http-sec-'));
    mkdirSync(join(root, 'private'));
    writeFileSync(join(root, 'private', 'secret.txt'), 'the secret');
    writeFileSync(join(root, 'public.txt'), 'public');
    app = createServer({
      onRequest: (ctx: Context) => {
        seen.push({ path: ctx.path, url: ctx.url, param: ctx.params['*'] });
        if (ctx.path.startsWith('/static/private')) throw new HttpError(403, 'private');
        return undefined;
      },
    });
    app.get('/static/*', serveStatic(root));
    ({ port } = await app.listen(0, '127.0.0.1'));
  });
  afterAll(() => app.close({ deadline: 200 }));

  const get = async (target: string): Promise<{ status: number; body: string }> => {
    const r = await raw(port, [`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    return { status: statusOf(r.data), body: r.data.slice(r.data.indexOf('\r\n\r\n') + 4) };
  };

  it('serves the public file and denies the private one by its plain path', async () => {
    expect((await get('/static/public.txt')).status).toBe(200);
    expect((await get('/static/private/secret.txt')).status).toBe(403);
  });

  it.each([
    '/static/./private/secret.txt',
    '/static/%70rivate/secret.txt',
    '/static/%2e/private/secret.txt',
    '/static//private/secret.txt',
    '/static/x/../private/secret.txt',
    '/static/x/%2e%2e/private/secret.txt',
    '/static/private%2fsecret.txt',
    '/static/private%5csecret.txt',
    '/static/%2570rivate/secret.txt',
  ])('never serves the secret for %s', async (target) => {
    const { status, body } = await get(target);
    expect(body).not.toContain('the secret');
    expect([400, 403, 404]).toContain(status);
  });

  it('gives the hook, ctx.path, ctx.url and the route the same canonical path', async () => {
    seen.length = 0;
    const { status } = await get('/static/./%70ublic.txt?x=%2e');
    expect(status).toBe(200);
    expect(seen).toEqual([
      { path: '/static/public.txt', url: '/static/public.txt?x=%2e', param: 'public.txt' },
    ]);
  });

  it('refuses encoded slashes and backslashes and dot-dot segments with 400', async () => {
    for (const target of ['/static/a%2Fb', '/static/a%5cb', '/static/../etc/passwd', '/static/%2E%2E/x']) {
      expect((await get(target)).status, target).toBe(400);
    }
  });
});

describe('serveStatic on its own', () => {
  it('refuses `.` and empty segments that the normaliser would never pass on', async () => {
    const root = mkdtempSync(join(tmpdir(), 'net-http-sec-'));
    mkdirSync(join(root, 'private'));
    writeFileSync(join(root, 'private', 'secret.txt'), 'the secret');
    const handler = serveStatic(root);
    for (const rel of ['./private/secret.txt', 'private/./secret.txt', 'private//secret.txt']) {
      const ctx = { req: { method: 'GET', headers: {} }, params: { '*': rel } } as unknown as Context;
      await expect(handler(ctx), rel).rejects.toMatchObject({ status: 403 });
    }
  });
});

describe('request headers', () => {
  let app: Server;
  let port: number;
  beforeAll(async () => {
    app = createServer();
    app.get('/', () => 'ok');
    ({ port } = await app.listen(0, '127.0.0.1'));
  });
  afterAll(() => app.close({ deadline: 200 }));

  it('answers 400 to a request with two Host headers (RFC 9112 §3.2)', async () => {
    const r = await raw(port, [
      'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(400);
    const one = await raw(port, ['GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n']);
    expect(statusOf(one.data)).toBe(200);
  });
});

describe('CONNECT tunnel limits', () => {
  let silent: NetServer;
  let silentPort: number;
  const upstreams: Socket[] = [];
  beforeAll(async () => {
    // Accepts and never says a word: each tunnel to it stays open until the idle timeout.
    silent = createNetServer((s) => {
      upstreams.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of upstreams) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  /** Opens `count` CONNECTs at once and returns each one's status (0 = no answer in time). */
  async function openTunnels(
    port: number,
    count: number,
  ): Promise<{ statuses: number[]; sockets: Socket[] }> {
    const sockets: Socket[] = [];
    const statuses = await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<number>((resolve) => {
            const socket = connect(port, '127.0.0.1');
            sockets.push(socket);
            let data = '';
            const timer = setTimeout(() => resolve(0), 5000);
            socket.on('error', () => {});
            socket.on('data', (d) => {
              data += d.toString('latin1');
              if (data.includes('\r\n')) {
                clearTimeout(timer);
                resolve(statusOf(data));
              }
            });
            socket.write(`CONNECT 127.0.0.1:${silentPort} HTTP/1.1\r\nHost: x\r\n\r\n`);
          }),
      ),
    );
    return { statuses, sockets };
  }

  it('limits tunnels per client by default (32) and frees a slot when a tunnel closes', async () => {
    const app = createServer({ connect: { allow: [`127.0.0.1:${silentPort}`] } });
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const { statuses, sockets } = await openTunnels(port, 40);
      expect(statuses.filter((s) => s === 200)).toHaveLength(32);
      expect(statuses.filter((s) => s === 429)).toHaveLength(8);
      const open = sockets.filter((_, i) => statuses[i] === 200);
      await new Promise<void>((resolve) => {
        open[0]!.once('close', () => resolve());
        open[0]!.destroy();
      });
      await new Promise((r) => setTimeout(r, 100));
      const again = await openTunnels(port, 1);
      expect(again.statuses).toEqual([200]);
      for (const s of [...sockets, ...again.sockets]) s.destroy();
    } finally {
      await app.close({ deadline: 200 });
    }
  });

  it('limits tunnels in total with maxTunnels', async () => {
    const app = createServer({ connect: { allow: [`127.0.0.1:${silentPort}`], maxTunnels: 5 } });
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const { statuses, sockets } = await openTunnels(port, 8);
      expect(statuses.filter((s) => s === 200)).toHaveLength(5);
      expect(statuses.filter((s) => s === 503)).toHaveLength(3);
      for (const s of sockets) s.destroy();
    } finally {
      await app.close({ deadline: 200 });
    }
  });
});
