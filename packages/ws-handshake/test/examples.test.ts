import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WS, { WebSocketServer as WSServer } from 'ws';
import { withTimeout } from './helpers.js';

// The runnable examples, as conformance tooling would use them: real processes, real sockets.

const pkg = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(`${pkg}dist/index.js`))
    execFileSync('pnpm', ['exec', 'tsup'], { cwd: pkg, stdio: 'ignore' });
}, 60_000);
afterAll(() => {
  for (const c of children) c.kill();
});

function run(
  script: string,
  args: string[],
): { child: ChildProcess; output: () => string; exited: Promise<number> } {
  const child = spawn(process.execPath, [`${pkg}examples/${script}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  return { child, output: () => out, exited };
}

describe('examples/echo-server.mjs', () => {
  for (const deflate of [false, true]) {
    it(`prints its URL and echoes 16 MiB messages (deflate ${deflate})`, async () => {
      const { child, output } = run('echo-server.mjs', ['--port', '0', ...(deflate ? ['--deflate'] : [])]);
      await withTimeout(
        new Promise<void>((r) => child.stdout!.on('data', () => output().includes('ws://') && r())),
        10_000,
        'listening line',
      );
      const url = /ws:\/\/[^\s]+/.exec(output())![0];
      const ws = new WS(url, { perMessageDeflate: deflate, maxPayload: 32 * 1024 * 1024 });
      await new Promise((r) => ws.once('open', r));
      const big = Buffer.alloc(16 * 1024 * 1024, 0x5a);
      const got: Array<[Buffer, boolean]> = [];
      ws.on('message', (d: Buffer, isBinary: boolean) => got.push([d, isBinary]));
      ws.send('text');
      ws.send(big);
      await withTimeout(
        new Promise<void>((r) => {
          const t = setInterval(() => {
            if (got.length < 2) return;
            clearInterval(t);
            r();
          }, 10);
        }),
        20_000,
        'echo',
      );
      expect(got[0]![0].toString()).toBe('text');
      expect(got[0]![1]).toBe(false);
      expect(got[1]![0].equals(big)).toBe(true);
      ws.close();
      child.kill();
    });
  }
});

describe('examples/autobahn-client.mjs', () => {
  it('runs every case of a fuzzing server and updates reports', async () => {
    // A stand-in fuzzing server (the `ws` package) speaking the Autobahn URL protocol.
    const wss = new WSServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as { port: number }).port;
    const results: Record<string, boolean> = {};
    let reportAgent = '';
    wss.on('connection', (s, req) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/getCaseCount') {
        s.send('3');
        s.close(1000);
      } else if (url.pathname === '/runCase') {
        const n = Number(url.searchParams.get('case'));
        const sent: Array<string | Buffer> = ['α'.repeat(n * 1000), Buffer.alloc(n * 5000, n)];
        const echoes: Array<string | Buffer> = [];
        s.on('message', (d: Buffer, isBinary: boolean) => {
          echoes.push(isBinary ? d : d.toString());
          if (echoes.length === sent.length) {
            results[`${n}:${url.searchParams.get('agent')}`] =
              JSON.stringify(echoes) === JSON.stringify(sent);
            s.close(1000);
          }
        });
        s.send(sent[0]!);
        s.send(sent[1]!);
      } else if (url.pathname === '/updateReports') {
        reportAgent = url.searchParams.get('agent') ?? '';
        s.close(1000);
      }
    });
    const { exited, output } = run('autobahn-client.mjs', [
      '--url',
      `ws://127.0.0.1:${port}`,
      '--agent',
      'net',
    ]);
    expect(await withTimeout(exited, 20_000, 'autobahn client')).toBe(0);
    expect(results).toEqual({ '1:net': true, '2:net': true, '3:net': true });
    expect(reportAgent).toBe('net');
    expect(output()).toContain('reports updated');
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });
});
