import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, reply, type Server, serveStatic } from '../src/index.js';
import { raw, statusOf } from './helpers.js';

const HEADERS_TIMEOUT = 1500;
// The documented default connectionsCheckingInterval for these timeouts:
// max(100, min(1000, min(headersTimeout, requestTimeout) / 4)) = 375 ms. A timed-out connection
// is cut at the first check after its deadline, so the bound is deadline + interval + 1 s.
const CHECK_INTERVAL = 375;
const MARGIN = 1000;
let app: Server;
let port: number;
let root: string;
const clientErrors: string[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'net-http-hostile-'));
  root = join(dir, 'public');
  mkdirSync(root);
  writeFileSync(join(root, 'index.html'), '<h1>hi</h1>');
  writeFileSync(join(dir, 'secret.txt'), 'TOP-SECRET');
  writeFileSync(join(root, '.env'), 'DOT-SECRET');
  symlinkSync(join(dir, 'secret.txt'), join(root, 'link.txt'));
  app = createServer({ bodyLimit: 1024, headersTimeout: HEADERS_TIMEOUT, requestTimeout: 5000 });
  app.on('clientError', (err) => clientErrors.push((err as Error & { code?: string }).code ?? 'unknown'));
  app.get('/', () => ({ ok: true }));
  app.post('/upload', async (ctx) => ({ size: (await ctx.buffer()).length }));
  app.post('/upload-stream', async (ctx) => {
    let size = 0;
    for await (const chunk of ctx.stream()) size += (chunk as Buffer).length;
    return { size };
  });
  app.get('/static/*', serveStatic(root));
  ({ port } = await app.listen(0, '127.0.0.1'));
});

afterAll(() => app.close({ deadline: 1000 }));

async function stillServing(): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  expect(await res.json()).toEqual({ ok: true });
}

describe('slowloris', () => {
  it('closes a connection trickling header bytes with 408 once headersTimeout passes', async () => {
    const trickle: (string | number)[] = ['GET / HTTP/1.1\r\n'];
    // The trickle would go on for 15 s; the server must cut it long before that.
    for (let i = 0; i < 60; i++) trickle.push(250, 'X');
    const pending = raw(port, trickle, 15_000);
    // Other clients are served while the slow one is being held.
    await new Promise((r) => setTimeout(r, 300));
    await stillServing();
    const r = await pending;
    expect(r.closed).toBe(true);
    expect(statusOf(r.data)).toBe(408);
    // headersTimeout + one check interval + 1 s of scheduling margin for a loaded machine.
    expect(r.elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT - 100);
    expect(r.elapsed).toBeLessThan(HEADERS_TIMEOUT + CHECK_INTERVAL + MARGIN);
    expect(clientErrors).toContain('ERR_HTTP_REQUEST_TIMEOUT');
    await stillServing();
  });

  it('closes a connection that sends nothing at all', async () => {
    const r = await raw(port, [], 15_000);
    expect(r.closed).toBe(true);
    expect(r.elapsed).toBeLessThan(HEADERS_TIMEOUT + CHECK_INTERVAL + MARGIN);
  });
});

describe('slow bodies', () => {
  it('answers 408 when the body does not arrive within requestTimeout', async () => {
    const slow = createServer({ headersTimeout: 1000, requestTimeout: 2000 });
    slow.post('/upload', async (ctx) => (await ctx.buffer()).length);
    const { port: slowPort } = await slow.listen(0, '127.0.0.1');
    try {
      const trickle: (string | number)[] = [
        'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n',
      ];
      // 99 body bytes over ~15 s: never complete, always slower than requestTimeout.
      for (let i = 0; i < 75; i++) trickle.push(200, 'b');
      const r = await raw(slowPort, trickle, 15_000);
      expect(r.closed).toBe(true);
      expect(statusOf(r.data)).toBe(408);
      // requestTimeout + the default check interval for 1000/2000 ms (250 ms) + 1 s.
      expect(r.elapsed).toBeGreaterThanOrEqual(2000 - 100);
      expect(r.elapsed).toBeLessThan(2000 + 250 + MARGIN);
    } finally {
      await slow.close({ deadline: 500 });
    }
  });
});

describe('oversized requests', () => {
  it('answers 431 to headers beyond maxHeaderSize and closes', async () => {
    const r = await raw(port, [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expect(statusOf(r.data)).toBe(431);
    expect(r.closed).toBe(true);
    await stillServing();
  });

  it('answers 413 to an announced oversized body before it is sent', async () => {
    const r = await raw(port, ['POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n']);
    expect(statusOf(r.data)).toBe(413);
    expect(r.closed).toBe(true);
    expect(r.data).toContain('ERR_HTTP_BODY_TOO_LARGE');
  });

  it('answers 413 (not 100 Continue) to Expect: 100-continue with an oversized length', async () => {
    const r = await raw(port, [
      'POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n',
    ]);
    expect(r.data).not.toContain('100 Continue');
    expect(statusOf(r.data)).toBe(413);
    expect(r.closed).toBe(true);
  });

  it('sends 100 Continue only for an existing route within the limit, then reads the body', async () => {
    const r = await raw(port, [
      'POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\nConnection: close\r\n\r\n',
      150,
      '0123456789',
    ]);
    expect(r.data.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toBe(true);
    expect(r.data).toContain('{"size":10}');
  });

  it('answers 404 / 405 to Expect: 100-continue on unknown routes or methods without 100', async () => {
    const unknown = await raw(port, [
      'POST /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
    ]);
    expect(statusOf(unknown.data)).toBe(404);
    expect(unknown.data).not.toContain('100 Continue');
    expect(unknown.closed).toBe(true);
    const method = await raw(port, [
      'PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
    ]);
    expect(statusOf(method.data)).toBe(405);
    expect(method.data).toMatch(/allow: OPTIONS, POST/i);
  });

  it('answers 417 to an expectation it does not know', async () => {
    const r = await raw(port, [
      'POST /upload HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx',
    ]);
    expect(statusOf(r.data)).toBe(417);
  });

  it('stops reading a chunked body past the limit with 413', async () => {
    const chunk = 'a'.repeat(800);
    const r = await raw(port, [
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      `${(800).toString(16)}\r\n${chunk}\r\n`,
      `${(800).toString(16)}\r\n${chunk}\r\n`,
      '0\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(413);
    expect(r.closed).toBe(true);
    await stillServing();
  });
});

describe('streamed bodies', () => {
  it('answers 413 once a streamed chunked body crosses the limit', async () => {
    const chunk = 'a'.repeat(800);
    const r = await raw(port, [
      'POST /upload-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      `320\r\n${chunk}\r\n`,
      50,
      `320\r\n${chunk}\r\n`,
      '0\r\n\r\n',
    ]);
    expect(statusOf(r.data)).toBe(413);
    expect(r.data).toContain('ERR_HTTP_BODY_TOO_LARGE');
    expect(r.closed).toBe(true);
  });

  it('survives a client that vanishes mid-body', async () => {
    const r = await raw(
      port,
      ['POST /upload-stream HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n', 'abc'],
      300,
    );
    expect(r.closed).toBe(false); // we hang up first
    await new Promise((res) => setTimeout(res, 100));
    await stillServing();
  });
});

describe('malformed requests', () => {
  const cases: [string, string][] = [
    ['garbage request line', 'HELLO\r\n\r\n'],
    ['unknown HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['space in the target', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['control byte in the target', 'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['header without colon', 'GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'],
    ['non-numeric Content-Length', 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n'],
    [
      'conflicting Content-Length',
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ],
    [
      'Content-Length with chunked',
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['bad chunk size', 'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n'],
  ];
  for (const [name, request] of cases) {
    it(`answers 400 and closes: ${name}`, async () => {
      const r = await raw(port, [request]);
      expect(statusOf(r.data)).toBe(400);
      expect(r.closed).toBe(true);
    });
  }

  it('keeps serving other clients after all of that', stillServing);
});

describe('path traversal against the static handler', () => {
  const attempts = [
    '/static/../secret.txt',
    '/static/%2e%2e/secret.txt',
    '/static/%2E%2E%2Fsecret.txt',
    '/static/..%2fsecret.txt',
    '/static/..%5csecret.txt',
    '/static/..\\secret.txt',
    '/static/a/../../secret.txt',
    '/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/static//etc/passwd',
    '/static/%2fetc%2fpasswd',
    '/static/%00',
    '/static/index.html%00.txt',
    '/static/%252e%252e/secret.txt',
    '/static/link.txt',
    '/static/.env',
    '/static/C:%5cwindows%5cwin.ini',
    '/static/%c0%ae%c0%ae/secret.txt',
  ];
  for (const target of attempts) {
    it(`refuses ${target}`, async () => {
      const r = await raw(port, [`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      expect([400, 403, 404]).toContain(statusOf(r.data));
      expect(r.data).not.toContain('SECRET');
      expect(r.data).not.toContain('root:');
    });
  }

  it('still serves legitimate files', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/static/index.html`);
    expect(await res.text()).toBe('<h1>hi</h1>');
  });
});

describe('Expect: 100-continue with an onRequest hook', () => {
  it('refuses an unauthorised upload before asking for its body', async () => {
    const guarded = createServer({
      onRequest: (ctx) => (ctx.headers.authorization === 'ok' ? undefined : reply(401, 'no')),
    });
    guarded.post('/upload', async (ctx) => (await ctx.buffer()).length);
    const { port: p } = await guarded.listen(0, '127.0.0.1');
    try {
      const denied = await raw(p, [
        'POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
      ]);
      expect(statusOf(denied.data)).toBe(401);
      expect(denied.data).not.toContain('100 Continue');
      expect(denied.closed).toBe(true);
      const allowed = await raw(p, [
        'POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
        100,
        'abcde',
      ]);
      expect(allowed.data.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toBe(true);
      expect(allowed.data.endsWith('5')).toBe(true);
    } finally {
      await guarded.close({ deadline: 500 });
    }
  });
});
