import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { createServer, etagMatches, parseRange, request, type Server, serveStatic } from '../src/index.js';
import { acceptedEncodings } from '../src/static.js';
import { raw, statusOf } from './helpers.js';

let app: Server;
let base: string;
let port: number;
const BYTES = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'net-http-static-'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>home</title>');
  writeFileSync(join(root, 'app.js'), 'console.log(1)');
  writeFileSync(join(root, 'style.CSS'), 'body{}');
  writeFileSync(join(root, 'data.bin'), BYTES);
  writeFileSync(join(root, 'empty.txt'), '');
  writeFileSync(join(root, 'notes.unknownext'), 'x');
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'index.html'), 'docs');
  app = createServer();
  app.get('/*', serveStatic(root, { maxAge: 60 }));
  ({ port } = await app.listen(0, '127.0.0.1'));
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => app.close({ deadline: 1000 }));

describe('static files', () => {
  it('serves files with content types by extension', async () => {
    const cases: [string, string][] = [
      ['/', 'text/html; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/style.CSS', 'text/css; charset=utf-8'],
      ['/data.bin', 'application/octet-stream'],
      ['/notes.unknownext', 'application/octet-stream'],
    ];
    for (const [path, type] of cases) {
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('public, max-age=60');
      await res.arrayBuffer();
    }
    expect(Buffer.from(await (await fetch(`${base}/data.bin`)).arrayBuffer()).equals(BYTES)).toBe(true);
  });

  it('answers 304 to a matching If-None-Match, and 200 to a stale one', async () => {
    const first = await fetch(`${base}/app.js`);
    const etag = first.headers.get('etag')!;
    await first.text();
    expect(etag).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    const again = await fetch(`${base}/app.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const list = await fetch(`${base}/app.js`, { headers: { 'if-none-match': `"nope", ${etag}` } });
    expect(list.status).toBe(304);
    const stale = await fetch(`${base}/app.js`, { headers: { 'if-none-match': '"other"' } });
    expect(stale.status).toBe(200);
    await stale.text();
  });

  it('answers 304 to If-Modified-Since not older than the file', async () => {
    const first = await fetch(`${base}/app.js`);
    const lastModified = first.headers.get('last-modified')!;
    await first.text();
    const again = await fetch(`${base}/app.js`, { headers: { 'if-modified-since': lastModified } });
    expect(again.status).toBe(304);
  });

  it('serves byte ranges with 206 and Content-Range', async () => {
    const res = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=10-19' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 10-19/1000');
    expect(res.headers.get('content-length')).toBe('10');
    expect(Buffer.from(await res.arrayBuffer()).equals(BYTES.subarray(10, 20))).toBe(true);
    const suffix = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=-5' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(BYTES.subarray(995))).toBe(true);
    const open = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=990-' } });
    expect(open.headers.get('content-range')).toBe('bytes 990-999/1000');
    await open.arrayBuffer();
  });

  it('answers 416 to an unsatisfiable range and ignores malformed ones', async () => {
    const res = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=5000-6000' } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
    await res.text();
    const bogus = await fetch(`${base}/data.bin`, { headers: { range: 'lines=1-2' } });
    expect(bogus.status).toBe(200);
    await bogus.arrayBuffer();
  });

  it('sends the whole file when If-Range does not match', async () => {
    const res = await fetch(`${base}/data.bin`, { headers: { range: 'bytes=0-9', 'if-range': '"stale"' } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it('answers HEAD with the length and no body', async () => {
    const r = await raw(port, ['HEAD /data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(statusOf(r.data)).toBe(200);
    expect(r.data).toMatch(/content-length: 1000\r\n/i);
    expect(r.data.endsWith('\r\n\r\n')).toBe(true);
  });

  it('serves empty files and directory indexes, redirecting to the trailing slash', async () => {
    const empty = await fetch(`${base}/empty.txt`);
    expect(empty.status).toBe(200);
    expect(await empty.text()).toBe('');
    const redirect = await fetch(`${base}/docs?x=1`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/docs/?x=1');
    expect(await (await fetch(`${base}/docs/`)).text()).toBe('docs');
    expect((await fetch(`${base}/missing.txt`)).status).toBe(404);
  });

  it('refuses a missing root at creation', () => {
    expect(() => serveStatic('/definitely/not/here')).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_INVALID_OPTION' }),
    );
  });
});

describe('precompressed siblings', () => {
  it('serves file.br / file.gz to clients that accept them, with Vary and distinct ETags', async () => {
    const root = mkdtempSync(join(tmpdir(), 'net-http-precompressed-'));
    const source = 'export const answer = 42;\n'.repeat(50);
    writeFileSync(join(root, 'app.js'), source);
    writeFileSync(join(root, 'app.js.gz'), gzipSync(source));
    writeFileSync(join(root, 'app.js.br'), brotliCompressSync(source));
    writeFileSync(join(root, 'only-plain.css'), 'a{}');
    const server = createServer();
    server.get('/*', serveStatic(root, { precompressed: true }));
    const { port: p } = await server.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${p}/app.js`;
    try {
      const gz = await request(url, { headers: { 'accept-encoding': 'gzip' } });
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(gz.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(gz.headers.vary).toBe('Accept-Encoding');
      expect(gunzipSync(await gz.body()).toString()).toBe(source);
      const br = await request(url, { headers: { 'accept-encoding': 'gzip, br' } });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(await br.body()).toString()).toBe(source);
      const plain = await request(url, { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(await plain.text()).toBe(source);
      expect(new Set([gz.headers.etag, br.headers.etag, plain.headers.etag]).size).toBe(3);
      const css = await request(`http://127.0.0.1:${p}/only-plain.css`, {
        headers: { 'accept-encoding': 'br' },
      });
      expect(css.headers['content-encoding']).toBeUndefined();
      expect(await css.text()).toBe('a{}');
    } finally {
      await server.close({ deadline: 500 });
    }
  });

  it('parses Accept-Encoding with q-values', () => {
    expect([...acceptedEncodings('gzip, deflate;q=0.5, br;q=0')]).toEqual(['gzip', 'deflate']);
    expect(acceptedEncodings(undefined).size).toBe(0);
    expect([...acceptedEncodings(' BR ; q=1 ,')]).toEqual(['br']);
  });
});

describe('range and etag parsing', () => {
  itFuzz('parseRange always returns a range inside the file, or a clear verdict', async () => {
    await fuzz(
      'http-static-1',
      fc.property(fc.string({ maxLength: 30 }), fc.nat(10_000), (header, size) => {
        const r = parseRange(header, size);
        if (r === null || r === 'unsatisfiable') return;
        expect(r.start).toBeGreaterThanOrEqual(0);
        expect(r.end).toBeGreaterThanOrEqual(r.start);
        expect(r.end).toBeLessThan(size);
      }),
      { numRuns: 500 },
    );
    await fuzz(
      'http-static-2',
      fc.property(fc.nat(5000), fc.nat(5000), fc.integer({ min: 1, max: 5000 }), (a, b, size) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const r = parseRange(`bytes=${start}-${end}`, size);
        if (start >= size) expect(r).toBe('unsatisfiable');
        else expect(r).toEqual({ start, end: Math.min(end, size - 1) });
      }),
      { numRuns: 300 },
    );
  });

  it('treats multiple ranges as "send everything"', () => {
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
  });

  it('compares etags weakly', () => {
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", W/"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('*', 'W/"x"')).toBe(true);
    expect(etagMatches('"c"', 'W/"a"')).toBe(false);
  });
});

describe('path resolution under random request paths', () => {
  let jail: Server;
  let jailPort: number;
  let jailDir: string;
  const inside = new Map([
    ['index.html', 'INDEX-PAGE'],
    ['a.txt', 'FILE-A'],
    ['sub/b.txt', 'FILE-B'],
    ['sub/index.html', 'SUB-INDEX'],
  ]);
  beforeAll(async () => {
    jailDir = mkdtempSync(join(tmpdir(), 'net-http-jail-'));
    const pub = join(jailDir, 'public');
    mkdirSync(join(pub, 'sub'), { recursive: true });
    for (const [name, body] of inside) writeFileSync(join(pub, name), body);
    writeFileSync(join(pub, '.env'), 'DOT-SECRET');
    writeFileSync(join(jailDir, 'secret.txt'), 'TOP-SECRET');
    symlinkSync(join(jailDir, 'secret.txt'), join(pub, 'link.txt'));
    symlinkSync(jailDir, join(pub, 'up'));
    jail = createServer();
    jail.get('/s/*', serveStatic(pub));
    ({ port: jailPort } = await jail.listen(0, '127.0.0.1'));
  });
  afterAll(async () => {
    await jail.close({ deadline: 500 });
    rmSync(jailDir, { recursive: true, force: true });
  });

  /** Path segments an attacker would try, raw and percent-encoded, plus arbitrary printable ones. */
  const segment = fc.oneof(
    fc.constantFrom(
      '..',
      '.',
      '',
      'a.txt',
      'sub',
      'b.txt',
      '.env',
      'link.txt',
      'up',
      'secret.txt',
      'public',
      '%2e%2e',
      '%2E.',
      '..%2f',
      '%2f',
      '%5c',
      '..%5c..',
      '%00',
      '%252e%252e',
      '%c0%ae%c0%ae',
      '...',
    ),
    fc.string({ maxLength: 12, unit: fc.constantFrom(...'ab.%2fFeE5c0/\\~:'.split('')) }),
  );

  /** What the path ends in: files inside, outside, behind links, hidden, or a directory. */
  const target = fc.constantFrom(
    'a.txt',
    'sub/b.txt',
    'link.txt',
    'up/secret.txt',
    'up/public/a.txt',
    '.env',
    'secret.txt',
    '../secret.txt',
    '%2e%2e/secret.txt',
    'sub/',
    'sub',
    '',
  );

  itFuzz('never serves a byte from outside the root, whatever the path', async () => {
    await fuzz(
      'http-static-path',
      fc.asyncProperty(fc.array(segment, { maxLength: 5 }), target, async (segments, last) => {
        const path = `/s/${[...segments, last].join('/')}`;
        const r = await raw(jailPort, [`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
        expect(r.data).not.toContain('TOP-SECRET');
        expect(r.data).not.toContain('DOT-SECRET');
        const status = statusOf(r.data);
        expect([200, 301, 400, 403, 404]).toContain(status);
        if (status === 200) {
          const body = r.data.slice(r.data.indexOf('\r\n\r\n') + 4);
          expect([...inside.values()]).toContain(body);
        }
      }),
      { numRuns: 60 },
    );
  });
});
