import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createServer,
  RequestTimeoutError,
  request,
  ResponseTooLargeError,
  type Server,
} from '../src/index.js';
import { selfSignedCert } from './helpers.js';

const { key, cert } = selfSignedCert();

function routes(app: Server): void {
  app.get('/v', (ctx) => ({ version: ctx.req.httpVersion }));
  app.post('/echo', async (ctx) => ({ got: await ctx.json(), version: ctx.req.httpVersion }));
  app.get('/slow', () => new Promise((r) => setTimeout(() => r('late'), 3000)));
  app.get('/big', () => Buffer.alloc(200_000, 1));
  let flaky = 0;
  app.get('/flaky', (ctx) => {
    flaky++;
    if (flaky % 2 === 1) {
      ctx.status = 503;
      return { try: 'again' };
    }
    return { attempt: flaky };
  });
}

describe('request() over HTTP/2', () => {
  let h2: Server;
  let h1: Server;
  let h2c: Server;
  let h2Port: number;
  let h1Port: number;
  let h2cPort: number;
  let sessions = 0;

  beforeAll(async () => {
    h2 = createServer({ tls: { key, cert }, http2: true });
    h1 = createServer({ tls: { key, cert } });
    h2c = createServer({ http2: 'h2c' });
    for (const app of [h2, h1, h2c]) routes(app);
    h2.node.on('session', () => sessions++);
    ({ port: h2Port } = await h2.listen(0, '127.0.0.1'));
    ({ port: h1Port } = await h1.listen(0, '127.0.0.1'));
    ({ port: h2cPort } = await h2c.listen(0, '127.0.0.1'));
  });
  afterAll(async () => {
    await Promise.all([
      h2.close({ deadline: 300 }),
      h1.close({ deadline: 300 }),
      h2c.close({ deadline: 300 }),
    ]);
  });

  it('speaks h2 with http2: true and reuses one session per origin', async () => {
    const before = sessions;
    for (let i = 0; i < 3; i++) {
      const res = await request(`https://localhost:${h2Port}/v`, { http2: true, tls: { ca: cert } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ version: '2.0' });
    }
    const posted = await request(`https://localhost:${h2Port}/echo`, {
      http2: true,
      tls: { ca: cert },
      json: { a: 1 },
    });
    expect(await posted.json()).toEqual({ got: { a: 1 }, version: '2.0' });
    expect(sessions - before).toBe(1);
  });

  it("picks by ALPN with 'auto': h2 where offered, HTTP/1.1 elsewhere", async () => {
    const a = await request(`https://localhost:${h2Port}/v`, { http2: 'auto', tls: { ca: cert } });
    expect(await a.json()).toEqual({ version: '2.0' });
    const b = await request(`https://localhost:${h1Port}/v`, { http2: 'auto', tls: { ca: cert } });
    expect(await b.json()).toEqual({ version: '1.1' });
    // Without the option the client stays on HTTP/1.1 even when h2 is offered.
    const c = await request(`https://localhost:${h2Port}/v`, { tls: { ca: cert } });
    expect(await c.json()).toEqual({ version: '1.1' });
  });

  it('uses h2c with prior knowledge for http: URLs when http2 is true', async () => {
    const res = await request(`http://127.0.0.1:${h2cPort}/v`, { http2: true });
    expect(await res.json()).toEqual({ version: '2.0' });
  });

  it('keeps timeouts, body limits and retries', async () => {
    const t0 = Date.now();
    await expect(
      request(`https://localhost:${h2Port}/slow`, {
        http2: true,
        tls: { ca: cert },
        timeout: 300,
        retries: 0,
      }),
    ).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(Date.now() - t0).toBeLessThan(2500);
    const big = await request(`https://localhost:${h2Port}/big`, {
      http2: true,
      tls: { ca: cert },
      maxBodySize: 1000,
    });
    await expect(big.body()).rejects.toBeInstanceOf(ResponseTooLargeError);
    const retried = await request(`https://localhost:${h2Port}/flaky`, {
      http2: true,
      tls: { ca: cert },
      retryDelay: 10,
    });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ attempt: 2 });
    // The session survived the cancelled streams.
    const after = await request(`https://localhost:${h2Port}/v`, { http2: true, tls: { ca: cert } });
    expect(await after.json()).toEqual({ version: '2.0' });
  });

  it('opens a new session after the server sent GOAWAY', async () => {
    const app = createServer({ http2: 'h2c' });
    routes(app);
    const { port } = await app.listen(0, '127.0.0.1');
    expect(await (await request(`http://127.0.0.1:${port}/v`, { http2: true })).json()).toEqual({
      version: '2.0',
    });
    await app.close({ deadline: 200 });
    const again = createServer({ http2: 'h2c' });
    routes(again);
    await again.listen(port, '127.0.0.1');
    try {
      const res = await request(`http://127.0.0.1:${port}/v`, { http2: true, retryDelay: 10 });
      expect(await res.json()).toEqual({ version: '2.0' });
    } finally {
      await again.close({ deadline: 200 });
    }
  });
});
