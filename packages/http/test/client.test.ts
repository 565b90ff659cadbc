import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionError,
  createServer,
  reply,
  request,
  RequestAbortedError,
  RequestTimeoutError,
  ResponseTooLargeError,
  type Server,
  TooManyRedirectsError,
} from '../src/index.js';

let app: Server;
let other: Server;
let base: string;
let otherBase: string;
const counters: Record<string, number> = {};
const connections = new Set<unknown>();
const bump = (key: string): number => (counters[key] = (counters[key] ?? 0) + 1);

beforeAll(async () => {
  app = createServer();
  app.node.on('connection', (s) => connections.add(s));
  app.get('/json', () => ({ a: 1 }));
  app.post('/echo', async (ctx) => ({
    method: ctx.method,
    body: await ctx.json(),
    type: ctx.headers['content-type'],
  }));
  app.put('/raw', async (ctx) => (await ctx.buffer()).length);
  app.get('/missing', () => reply(404, { nope: true }));
  app.get('/flaky/:key', (ctx) => {
    if (bump(ctx.params.key) <= 2) ctx.req.socket.destroy();
    else return { attempt: counters[ctx.params.key] };
  });
  app.post('/flaky-post/:key', (ctx) => {
    bump(ctx.params.key);
    ctx.req.socket.destroy();
  });
  app.get('/busy/:key', (ctx) =>
    bump(ctx.params.key) <= 1 ? reply(503, 'busy', { 'retry-after': '0' }) : 'free',
  );
  app.get('/always-busy', () => reply(503, 'busy'));
  app.get('/redirect/:n', (ctx) => {
    const n = Number(ctx.params.n);
    return n === 0 ? { arrived: true } : reply(302, undefined, { location: `/redirect/${n - 1}` });
  });
  app.get('/loop', () => reply(307, undefined, { location: '/loop' }));
  app.post('/see-other', () => reply(303, undefined, { location: '/json' }));
  app.get('/away', () => reply(302, undefined, { location: `${otherBase}/headers` }));
  app.get('/hang', () => new Promise(() => {}));
  app.get('/big', () => Buffer.alloc(50_000));
  app.get('/big-chunked', () => Readable.from([Buffer.alloc(30_000), Buffer.alloc(30_000)]));
  app.get('/not-json', () => 'plain text');
  const a = await app.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${a.port}`;
  other = createServer();
  other.get('/headers', (ctx) => ({ authorization: ctx.headers.authorization ?? null }));
  const b = await other.listen(0, '127.0.0.1');
  otherBase = `http://127.0.0.1:${b.port}`;
});

afterAll(async () => {
  await Promise.all([app.close({ deadline: 500 }), other.close({ deadline: 500 })]);
});

describe('client basics', () => {
  it('sends JSON and reads JSON', async () => {
    const res = await request(`${base}/echo`, { json: { hi: 1 } });
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(await res.json()).toEqual({ method: 'POST', body: { hi: 1 }, type: 'application/json' });
  });

  it('sends raw bodies, including streams', async () => {
    const res = await request(`${base}/raw`, { method: 'PUT', body: 'abc' });
    expect(await res.text()).toBe('3');
    const streamed = await request(`${base}/raw`, {
      method: 'PUT',
      body: Readable.from([Buffer.alloc(10), Buffer.alloc(5)]),
    });
    expect(await streamed.text()).toBe('15');
  });

  it('returns non-2xx responses instead of throwing', async () => {
    const res = await request(`${base}/missing`);
    expect(res.status).toBe(404);
    expect(res.ok).toBe(false);
    expect(await res.json()).toEqual({ nope: true });
  });

  it('reuses keep-alive connections', async () => {
    const before = connections.size;
    for (let i = 0; i < 5; i++) await (await request(`${base}/json`)).json();
    expect(connections.size - before).toBeLessThanOrEqual(1);
  });

  it('reports a body read twice and bad JSON with coded errors', async () => {
    const res = await request(`${base}/json`);
    await res.text();
    await expect(res.text()).rejects.toMatchObject({ code: 'ERR_HTTP_RESPONSE_CONSUMED' });
    await expect((await request(`${base}/not-json`)).json()).rejects.toMatchObject({
      code: 'ERR_HTTP_RESPONSE_INVALID_JSON',
    });
  });

  it('rejects invalid URLs and options', async () => {
    await expect(request('not a url')).rejects.toMatchObject({ code: 'ERR_HTTP_INVALID_OPTION' });
    await expect(request('ftp://x/')).rejects.toMatchObject({ code: 'ERR_HTTP_INVALID_OPTION' });
    await expect(request(base, { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_HTTP_INVALID_OPTION' });
  });
});

describe('client retries', () => {
  it('retries idempotent requests after connection failures', async () => {
    const res = await request(`${base}/flaky/get1`, { retries: 2, retryDelay: 10 });
    expect(await res.json()).toEqual({ attempt: 3 });
  });

  it('gives up with ConnectionError when retries run out', async () => {
    await expect(request(`${base}/flaky/get2`, { retries: 1, retryDelay: 10 })).rejects.toBeInstanceOf(
      ConnectionError,
    );
    expect(counters.get2).toBe(2);
  });

  it('never retries a POST', async () => {
    await expect(
      request(`${base}/flaky-post/p1`, { method: 'POST', body: 'x', retries: 3 }),
    ).rejects.toBeInstanceOf(ConnectionError);
    expect(counters.p1).toBe(1);
  });

  it('retries 503 honouring Retry-After, and returns the last 503 when exhausted', async () => {
    expect(await (await request(`${base}/busy/b1`, { retryDelay: 10 })).text()).toBe('free');
    const res = await request(`${base}/always-busy`, { retries: 1, retryDelay: 10 });
    expect(res.status).toBe(503);
    await res.dump();
  });

  it('fails on a refused connection with ConnectionError', async () => {
    await expect(request('http://127.0.0.1:1/', { retries: 1, retryDelay: 5 })).rejects.toBeInstanceOf(
      ConnectionError,
    );
  });
});

describe('client redirects', () => {
  it('does not follow by default', async () => {
    const res = await request(`${base}/redirect/2`);
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/redirect/1');
    await res.dump();
  });

  it('follows up to maxRedirects', async () => {
    const res = await request(`${base}/redirect/3`, { maxRedirects: 3 });
    expect(await res.json()).toEqual({ arrived: true });
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${base}/redirect/0`);
    await expect(request(`${base}/redirect/5`, { maxRedirects: 2 })).rejects.toBeInstanceOf(
      TooManyRedirectsError,
    );
    await expect(request(`${base}/loop`, { maxRedirects: 4 })).rejects.toMatchObject({
      code: 'ERR_HTTP_TOO_MANY_REDIRECTS',
    });
  });

  it('turns POST into GET on 303', async () => {
    const res = await request(`${base}/see-other`, { method: 'POST', json: { x: 1 }, maxRedirects: 1 });
    expect(await res.json()).toEqual({ a: 1 });
  });

  it('drops credentials when the redirect leaves the origin', async () => {
    const res = await request(`${base}/away`, { headers: { Authorization: 'Bearer t' }, maxRedirects: 1 });
    expect(await res.json()).toEqual({ authorization: null });
  });
});

describe('client limits', () => {
  it('times out a request that gets no response', async () => {
    const started = Date.now();
    await expect(request(`${base}/hang`, { timeout: 200, retries: 0 })).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('aborts through an AbortSignal', async () => {
    const controller = new AbortController();
    const pending = request(`${base}/hang`, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toBeInstanceOf(RequestAbortedError);
    await expect(request(`${base}/json`, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      RequestAbortedError,
    );
  });

  it('refuses response bodies beyond maxBodySize', async () => {
    await expect((await request(`${base}/big`, { maxBodySize: 10_000 })).body()).rejects.toBeInstanceOf(
      ResponseTooLargeError,
    );
    await expect(
      (await request(`${base}/big-chunked`, { maxBodySize: 40_000 })).body(),
    ).rejects.toBeInstanceOf(ResponseTooLargeError);
    const stream = (await request(`${base}/big-chunked`, { maxBodySize: 40_000 })).stream();
    await expect(
      (async () => {
        for await (const _ of stream) {
          // drain
        }
      })(),
    ).rejects.toBeInstanceOf(ResponseTooLargeError);
    expect((await (await request(`${base}/big-chunked`, { maxBodySize: 60_000 })).body()).length).toBe(
      60_000,
    );
  });
});
