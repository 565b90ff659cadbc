import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type Context, createServer, HttpError, reply, type Server } from '../src/index.js';
import { raw, statusOf } from './helpers.js';

let app: Server;
let base: string;
let port: number;
const requestErrors: unknown[] = [];
const aborted: string[] = [];

beforeAll(async () => {
  app = createServer({ bodyLimit: 1024 });
  app.on('requestError', (err) => requestErrors.push(err));
  app.get('/', () => ({ hello: 'world' }));
  app.get('/rooms/:room/messages', (ctx) => ({
    room: ctx.params.room,
    query: ctx.query,
    search: ctx.search,
  }));
  app.post('/rooms/:room/messages', async (ctx) =>
    reply(201, { room: ctx.params.room, body: await ctx.json() }, { location: '/x' }),
  );
  app.post('/text', async (ctx) => `got ${(await ctx.text()).length}`);
  app.post('/big', async (ctx) => (await ctx.buffer()).length, { bodyLimit: 100_000 });
  app.post('/stream', async (ctx) => {
    let n = 0;
    for await (const chunk of ctx.stream()) n += (chunk as Buffer).length;
    return { n };
  });
  app.get('/string', () => 'plain');
  app.get('/buffer', () => Buffer.from([1, 2, 3]));
  app.get('/readable', () => Readable.from(['a', 'b', 'c']));
  app.get(
    '/web',
    () =>
      new ReadableStream({
        start: (c) => {
          c.enqueue(new TextEncoder().encode('web'));
          c.close();
        },
      }),
  );
  app.get('/nothing', () => undefined);
  app.get('/status', (ctx: Context) => {
    ctx.status = 202;
    ctx.header('x-custom', 'yes');
    return { accepted: true };
  });
  app.get('/manual', (ctx) => {
    setTimeout(() => {
      ctx.res.writeHead(200, { 'content-type': 'text/plain' });
      ctx.res.end('manual');
    }, 20);
    return ctx.res;
  });
  app.get('/teapot', () => {
    throw new HttpError(418, 'short and stout', { code: 'ERR_TEAPOT' });
  });
  app.get('/boom', () => {
    throw new Error('secret internals');
  });
  app.get('/async-boom', async () => {
    throw new Error('async secret');
  });
  app.get('/cycle', () => {
    const a: Record<string, unknown> = {};
    a.a = a;
    return a;
  });
  app.all('/any', (ctx) => ({ method: ctx.method }));
  app.delete('/any', () => 'deleted');
  app.get('/abortable', async (ctx) => {
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    aborted.push(ctx.path);
    return 'too late';
  });
  app.get('/files/*path', (ctx) => ({ path: ctx.params.path }));
  ({ port } = await app.listen(0, '127.0.0.1'));
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => app.close({ deadline: 1000 }));

describe('routing', () => {
  it('serves a JSON object with the right content type', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ hello: 'world' });
  });

  it('decodes params and parses the query lazily', async () => {
    const res = await fetch(`${base}/rooms/gen%20eral/messages?limit=10&tag=a&tag=b`);
    expect(await res.json()).toEqual({
      room: 'gen eral',
      query: { limit: '10', tag: ['a', 'b'] },
      search: 'limit=10&tag=a&tag=b',
    });
  });

  it('gives 404 with a JSON error for unknown paths', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'ERR_HTTP_NOT_FOUND', message: 'No route for GET /nope' },
    });
  });

  it('gives 405 with Allow for a known path and a wrong method', async () => {
    const res = await fetch(`${base}/rooms/a/messages`, { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS, POST');
  });

  it('answers OPTIONS automatically with 204 and Allow', async () => {
    const res = await fetch(`${base}/rooms/a/messages`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS, POST');
  });

  it('answers HEAD for GET routes with headers and no body', async () => {
    const r = await raw(port, ['HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(statusOf(r.data)).toBe(200);
    expect(r.data).toMatch(/content-length: 17/i);
    expect(r.data.endsWith('\r\n\r\n')).toBe(true);
  });

  it('prefers the specific method over the any-method route', async () => {
    expect(await (await fetch(`${base}/any`, { method: 'PATCH' })).json()).toEqual({ method: 'PATCH' });
    expect(await (await fetch(`${base}/any`, { method: 'DELETE' })).text()).toBe('deleted');
  });

  it('gives the wildcard the rest of the path', async () => {
    expect(await (await fetch(`${base}/files/a/b%20c.txt`)).json()).toEqual({ path: 'a/b c.txt' });
  });

  it('rejects malformed percent-encoding in params with 400', async () => {
    const r = await raw(port, [
      'GET /rooms/%E0%A4%A/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(400);
    expect(r.data).toContain('ERR_HTTP_INVALID_PATH');
  });

  it('routes absolute-form targets by their path and rejects other forms', async () => {
    const ok = await raw(port, [
      `GET http://127.0.0.1:${port}/string HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ]);
    expect(statusOf(ok.data)).toBe(200);
    expect(ok.data.endsWith('plain')).toBe(true);
    const bad = await raw(port, ['GET foo HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(statusOf(bad.data)).toBe(400);
  });
});

describe('responses', () => {
  it('maps return values to bodies and content types', async () => {
    const str = await fetch(`${base}/string`);
    expect(str.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await str.text()).toBe('plain');
    const buf = await fetch(`${base}/buffer`);
    expect(buf.headers.get('content-type')).toBe('application/octet-stream');
    expect([...new Uint8Array(await buf.arrayBuffer())]).toEqual([1, 2, 3]);
    expect(await (await fetch(`${base}/readable`)).text()).toBe('abc');
    expect(await (await fetch(`${base}/web`)).text()).toBe('web');
    expect((await fetch(`${base}/nothing`)).status).toBe(204);
  });

  it('honours ctx.status, ctx.header and reply()', async () => {
    const res = await fetch(`${base}/status`);
    expect(res.status).toBe(202);
    expect(res.headers.get('x-custom')).toBe('yes');
    const created = await fetch(`${base}/rooms/r1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hi' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/x');
    expect(await created.json()).toEqual({ room: 'r1', body: { text: 'hi' } });
  });

  it('leaves the response alone when the handler returns ctx.res', async () => {
    expect(await (await fetch(`${base}/manual`)).text()).toBe('manual');
  });

  it('turns HttpError into its status and a coded JSON body', async () => {
    const res = await fetch(`${base}/teapot`);
    expect(res.status).toBe(418);
    expect(await res.json()).toEqual({ error: { code: 'ERR_TEAPOT', message: 'short and stout' } });
  });

  it('hides internal errors behind a 500 and reports them as requestError', async () => {
    for (const path of ['/boom', '/async-boom', '/cycle']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toContain('secret');
      expect(JSON.parse(text).error.code).toBe('ERR_HTTP_INTERNAL');
    }
    expect(requestErrors.length).toBeGreaterThanOrEqual(3);
  });
});

describe('client disconnects', () => {
  it('aborts ctx.signal when the client goes away', async () => {
    const r = await raw(port, ['GET /abortable HTTP/1.1\r\nHost: x\r\n\r\n'], 200);
    expect(r.closed).toBe(false);
    for (let i = 0; i < 50 && aborted.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(aborted).toEqual(['/abortable']);
  });
});

describe('request bodies', () => {
  it('reads text and JSON within the limit', async () => {
    expect(await (await fetch(`${base}/text`, { method: 'POST', body: 'x'.repeat(1000) })).text()).toBe(
      'got 1000',
    );
  });

  it('refuses an announced oversized body with 413 and closes the connection', async () => {
    const res = await fetch(`${base}/text`, { method: 'POST', body: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_HTTP_BODY_TOO_LARGE');
  });

  it('stops a chunked body at the limit with 413', async () => {
    const body = Readable.from([Buffer.alloc(600), Buffer.alloc(600)]);
    const res = await fetch(`${base}/text`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('applies the per-route limit', async () => {
    expect(await (await fetch(`${base}/big`, { method: 'POST', body: 'x'.repeat(50_000) })).text()).toBe(
      '50000',
    );
  });

  it('enforces the limit on ctx.stream()', async () => {
    const small = await fetch(`${base}/stream`, { method: 'POST', body: 'y'.repeat(800) });
    expect(await small.json()).toEqual({ n: 800 });
    const body = Readable.from([Buffer.alloc(700), Buffer.alloc(700)]);
    const big = await fetch(`${base}/stream`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(big.status).toBe(413);
  });

  it('rejects invalid JSON with 400 and a non-JSON content type with 415', async () => {
    const bad = await fetch(`${base}/rooms/r/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ERR_HTTP_INVALID_JSON');
    const form = await fetch(`${base}/rooms/r/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
  });
});

describe('server options', () => {
  it('validates options with coded errors', () => {
    expect(() => createServer({ bodyLimit: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_INVALID_OPTION' }),
    );
    expect(() => createServer({ headersTimeout: 1.5 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_INVALID_OPTION' }),
    );
  });

  it('uses onError and notFound hooks', async () => {
    const custom = createServer({
      onError: (err) => reply(503, { custom: String((err as Error).message) }),
      notFound: (ctx) => reply(404, `no ${ctx.path}`),
    });
    custom.get('/fail', () => {
      throw new Error('down');
    });
    const { port: p } = await custom.listen(0, '127.0.0.1');
    try {
      const fail = await fetch(`http://127.0.0.1:${p}/fail`);
      expect(fail.status).toBe(503);
      expect(await fail.json()).toEqual({ custom: 'down' });
      const missing = await fetch(`http://127.0.0.1:${p}/where`);
      expect(await missing.text()).toBe('no /where');
    } finally {
      await custom.close({ deadline: 500 });
    }
  });

  it('refuses to listen twice', async () => {
    const s = createServer();
    await s.listen(0, '127.0.0.1');
    await expect(s.listen(0, '127.0.0.1')).rejects.toMatchObject({ code: 'ERR_HTTP_SERVER_STATE' });
    await s.close();
  });
});

describe('types', () => {
  it('infers path params from the pattern', () => {
    const typed = createServer();
    typed.get('/rooms/:room/files/*rest', (ctx) => {
      expectTypeOf(ctx.params).toEqualTypeOf<Readonly<{ room: string; rest: string }>>();
      return ctx.params.room + ctx.params.rest;
    });
    typed.get('/plain/*', (ctx) => {
      expectTypeOf(ctx.params['*']).toEqualTypeOf<string>();
    });
    expect(typed.routes()).toEqual([
      { method: 'GET', pattern: '/rooms/:room/files/*rest' },
      { method: 'GET', pattern: '/plain/*' },
    ]);
  });
});

describe('onRequest hook', () => {
  it('runs before handlers, can short-circuit, and passes state along', async () => {
    const seen: string[] = [];
    const hooked = createServer({
      onRequest: async (ctx) => {
        seen.push(ctx.path);
        ctx.header('x-request-id', '7');
        if (ctx.headers.authorization !== 'Bearer ok') return reply(401, { error: 'unauthorised' });
        ctx.state.user = 'ada';
        return undefined;
      },
    });
    hooked.get('/me', (ctx) => ({ user: ctx.state.user }));
    hooked.get('/boom', () => {
      throw new HttpError(409, 'conflict');
    });
    const { port: p } = await hooked.listen(0, '127.0.0.1');
    try {
      const denied = await fetch(`http://127.0.0.1:${p}/me`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get('x-request-id')).toBe('7');
      const ok = await fetch(`http://127.0.0.1:${p}/me`, { headers: { authorization: 'Bearer ok' } });
      expect(await ok.json()).toEqual({ user: 'ada' });
      const boom = await fetch(`http://127.0.0.1:${p}/boom`, { headers: { authorization: 'Bearer ok' } });
      expect(boom.status).toBe(409);
      expect(boom.headers.get('x-request-id')).toBe('7');
      expect((await fetch(`http://127.0.0.1:${p}/unrouted`)).status).toBe(404);
      expect(seen).toEqual(['/me', '/me', '/boom']);
    } finally {
      await hooked.close({ deadline: 500 });
    }
  });
});
