import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, serveStatic } from '../src/index.js';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { selfSignedCert } from './helpers.js';

// curl runs as a child process (asynchronously, so this process keeps serving).
const run = promisify(execFile);
async function curl(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(peerPath('curl'), ['-sS', '--max-time', '10', ...args], {
      encoding: 'latin1',
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

let app: Server;
let target: Server;
let base: string;
let dir: string;
let targetPort: number;
let proxyPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'net-http-interop-'));
  writeFileSync(join(dir, 'small.bin'), Buffer.alloc(2000, 7));
  writeFileSync(join(dir, 'large.bin'), Buffer.alloc(3 * 1024 * 1024, 1));
  writeFileSync(join(dir, 'page.txt'), 'abcdefghijklmnopqrstuvwxyz');
  target = createServer();
  target.get('/', () => 'through the tunnel');
  ({ port: targetPort } = await target.listen(0, '127.0.0.1'));
  // The file server doubles as a CONNECT proxy that may only reach the target.
  app = createServer({ bodyLimit: 64 * 1024, connect: { allow: [`127.0.0.1:${targetPort}`] } });
  app.post('/upload', async (ctx) => ({ size: (await ctx.buffer()).length }));
  app.get('/files/*', serveStatic(dir));
  ({ port: proxyPort } = await app.listen(0, '127.0.0.1'));
  base = `http://127.0.0.1:${proxyPort}`;
});

afterAll(async () => {
  await Promise.all([app.close({ deadline: 1000 }), target.close({ deadline: 1000 })]);
});

describeWithPeers(['curl'], 'curl', () => {
  it('gets 100 Continue and uploads with Expect: 100-continue', async () => {
    const r = await curl([
      '-v',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      `@${join(dir, 'small.bin')}`,
      `${base}/upload`,
    ]);
    expect(r.stderr).toContain('< HTTP/1.1 100 Continue');
    expect(JSON.parse(r.stdout)).toEqual({ size: 2000 });
  });

  it('gets 413 without 100 Continue for an oversized upload', async () => {
    const r = await curl([
      '-v',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      `@${join(dir, 'large.bin')}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/upload`,
    ]);
    expect(r.stdout).toBe('413');
    expect(r.stderr).not.toContain('100 Continue');
  });

  it('downloads a byte range', async () => {
    const r = await curl(['-i', '-r', '2-5', `${base}/files/page.txt`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 206/);
    expect(r.stdout).toMatch(/content-range: bytes 2-5\/26/i);
    expect(r.stdout.endsWith('\r\n\r\ncdef')).toBe(true);
  });

  it('revalidates with the ETag and gets 304', async () => {
    const head = await curl(['-sI', `${base}/files/page.txt`]);
    const etag = /etag: (.*)\r\n/i.exec(head.stdout)![1]!;
    const r = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `If-None-Match: ${etag}`,
      `${base}/files/page.txt`,
    ]);
    expect(r.stdout).toBe('304');
  });

  it('tunnels through the CONNECT proxy to an allowed target', async () => {
    const r = await curl(['-p', '-x', `http://127.0.0.1:${proxyPort}`, `http://127.0.0.1:${targetPort}/`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('through the tunnel');
  });

  it('is refused with 403 by the proxy for any other target', async () => {
    const r = await curl([
      '-p',
      '-x',
      `http://127.0.0.1:${proxyPort}`,
      '-w',
      '%{http_connect}',
      `http://127.0.0.1:${proxyPort}/`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('403');
  });
});

describeWithPeers(['curl', 'openssl'], 'curl over TLS', () => {
  it('trusts the server with --cacert, and refuses it without', async () => {
    const { key, cert } = selfSignedCert();
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, cert);
    const secure = createServer({ tls: { key, cert } });
    secure.get('/hello/:who', (ctx) => ({ hello: ctx.params.who }));
    const { port } = await secure.listen(0, '127.0.0.1');
    try {
      const ok = await curl(['--cacert', caFile, `https://127.0.0.1:${port}/hello/curl`]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual({ hello: 'curl' });
      const untrusted = await curl([`https://127.0.0.1:${port}/hello/curl`]);
      expect(untrusted.code).not.toBe(0);
    } finally {
      await secure.close({ deadline: 500 });
    }
  });
});

describe('node fetch', () => {
  it('downloads, ranges and uploads', async () => {
    expect(await (await fetch(`${base}/files/page.txt`)).text()).toBe('abcdefghijklmnopqrstuvwxyz');
    const part = await fetch(`${base}/files/page.txt`, { headers: { range: 'bytes=-3' } });
    expect(await part.text()).toBe('xyz');
    const up = await fetch(`${base}/upload`, { method: 'POST', body: new Uint8Array(5000) });
    expect(await up.json()).toEqual({ size: 5000 });
  });
});
