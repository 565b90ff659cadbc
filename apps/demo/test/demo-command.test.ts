import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/server.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('pnpm demo', () => {
  it('says it is building, prints the URL to open, and stops quietly with status 0 on Ctrl-C', async () => {
    const dataDir = tempDir('chat-demo-cmd-');
    // Its own process group, like a terminal's foreground job: Ctrl-C signals the whole group.
    const child = spawn('pnpm', ['demo'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CHAT_DATA_DIR: dataDir,
        CHAT_TCP_PORT: '0',
        CHAT_HTTP_PORT: '0',
        CHAT_UDP_PORT: '0',
        CHAT_HOST: '127.0.0.1',
      },
    });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 120_000;
      while (!/^ready$/m.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ready line:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toMatch(/building the packages and the demo/);
      const page = /open (http:\/\/127\.0\.0\.1:\d+\/) in a browser/.exec(out);
      expect(page).not.toBeNull();
      expect((await fetch(page![1]!)).status).toBe(200);
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(out).toMatch(/SIGINT: shutting down/);
      expect(out).toMatch(/\bbye\b/);
      expect(out).not.toMatch(/ERR_PNPM|ELIFECYCLE|Command failed/);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 180_000);
});
