import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { createServer, type Server } from '../src/index.js';
import { selfSignedCert } from './helpers.js';

const run = promisify(execFile);
async function exec(file: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(file, args, { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

const BIG = 1_000_000;

function routes(app: Server, hooks: { started?: () => void; release?: Promise<void> }): void {
  app.get('/v', (ctx) => ({ version: ctx.req.httpVersion }));
  app.post('/echo', async (ctx) => ({ got: await ctx.json(), version: ctx.req.httpVersion }));
  app.get('/big', () => {
    const body = Buffer.alloc(BIG);
    for (let i = 0; i < BIG; i++) body[i] = i % 251;
    return body;
  });
  app.get('/slow', async () => {
    hooks.started?.();
    await hooks.release;
    return 'finished';
  });
}

describeWithPeers(['curl', 'nghttp'], 'HTTP/2 interop (curl, nghttp)', () => {
  let tlsApp: Server;
  let h2cApp: Server;
  let tlsPort: number;
  let h2cPort: number;
  let caFile: string;
  const { key, cert } = selfSignedCert();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-http-h2-interop-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, cert);
    tlsApp = createServer({ tls: { key, cert }, http2: true });
    h2cApp = createServer({ http2: 'h2c' });
    routes(tlsApp, {});
    routes(h2cApp, {});
    ({ port: tlsPort } = await tlsApp.listen(0, '127.0.0.1'));
    ({ port: h2cPort } = await h2cApp.listen(0, '127.0.0.1'));
  });
  afterAll(() => Promise.all([tlsApp.close({ deadline: 300 }), h2cApp.close({ deadline: 300 })]));

  it('curl --http2 over TLS negotiates h2; --http1.1 on the same port gets HTTP/1.1', async () => {
    const curl = peerPath('curl');
    const base = ['-sS', '--max-time', '10', '--cacert', caFile, '-w', '\n%{http_version}'];
    const h2 = await exec(curl, [...base, '--http2', `https://127.0.0.1:${tlsPort}/v`]);
    expect(h2.code).toBe(0);
    expect(h2.stdout).toBe('{"version":"2.0"}\n2');
    const post = await exec(curl, [
      ...base,
      '--http2',
      '-H',
      'content-type: application/json',
      '--data',
      '{"x":[1,2]}',
      `https://127.0.0.1:${tlsPort}/echo`,
    ]);
    expect(post.stdout).toBe('{"got":{"x":[1,2]},"version":"2.0"}\n2');
    const h1 = await exec(curl, [...base, '--http1.1', `https://127.0.0.1:${tlsPort}/v`]);
    expect(h1.stdout).toBe('{"version":"1.1"}\n1.1');
  });

  it('curl --http2-prior-knowledge against h2c', async () => {
    const r = await exec(peerPath('curl'), [
      '-sS',
      '--max-time',
      '10',
      '--http2-prior-knowledge',
      '-w',
      '\n%{http_version}',
      `http://127.0.0.1:${h2cPort}/v`,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"version":"2.0"}\n2');
  });

  it('nghttp sees the advertised SETTINGS values', async () => {
    const r = await exec(peerPath('nghttp'), ['-v', '-n', '-t', '10', `http://127.0.0.1:${h2cPort}/v`]);
    expect(r.code).toBe(0);
    const settings = r.stdout.slice(r.stdout.indexOf('recv SETTINGS frame'));
    expect(settings).toContain('[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]');
    expect(settings).toContain('[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):16384]');
    expect(settings).toContain('[SETTINGS_ENABLE_PUSH(0x02):0]');
  });

  it('nghttp with a 1 KiB stream window receives a 1 MB body intact (flow control)', async () => {
    const r = await exec(peerPath('nghttp'), [
      '-v',
      '-w',
      '10',
      '-W',
      '12',
      '-t',
      '20',
      `https://127.0.0.1:${tlsPort}/big`,
      '-y',
    ]);
    expect(r.code).toBe(0);
    const frames = [...r.stdout.matchAll(/recv DATA frame <length=(\d+)/g)].map((m) => Number(m[1]));
    expect(frames.reduce((a, b) => a + b, 0)).toBe(BIG);
    // The server never overran the 1023-byte window.
    expect(Math.max(...frames)).toBeLessThanOrEqual(1023);
    expect((r.stdout.match(/send WINDOW_UPDATE frame/g) ?? []).length).toBeGreaterThan(100);
  });

  it('nghttp gets GOAWAY on close() and its in-flight stream still completes', async () => {
    let started: () => void = () => {};
    let release: () => void = () => {};
    const startedP = new Promise<void>((r) => {
      started = r;
    });
    const app = createServer({ http2: 'h2c' });
    routes(app, {
      started: () => started(),
      release: new Promise<void>((r) => {
        release = r;
      }),
    });
    const { port } = await app.listen(0, '127.0.0.1');
    const client = exec(peerPath('nghttp'), ['-v', '-t', '10', `http://127.0.0.1:${port}/slow`]);
    await startedP;
    const closed = app.close({ deadline: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    release();
    const r = await client;
    await closed;
    expect(r.stdout).toMatch(/recv GOAWAY frame <[^>]*>\s*\(last_stream_id=\d+, error_code=NO_ERROR\(0x00\)/);
    expect(r.stdout).toContain('finished');
    expect(r.stdout.indexOf('recv GOAWAY')).toBeLessThan(r.stdout.indexOf('finished'));
  });
});
