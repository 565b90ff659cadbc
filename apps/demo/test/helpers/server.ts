import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const DEMO_DIR = resolve(import.meta.dirname, '../..');
export const SERVER_JS = join(DEMO_DIR, 'dist/server.js');
export const CLIENT_JS = join(DEMO_DIR, 'dist/client/cli.js');

export interface RunningServer {
  proc: ChildProcess;
  dataDir: string;
  /** Listener URLs by name: tcp, http, udp, tls, https. */
  urls: Record<string, string>;
  caPath?: string;
  caPin?: string;
  stdout: () => string;
  stderr: () => string;
  port(name: string): number;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'chat-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Start `node dist/server.js` with every port 0 on 127.0.0.1 and wait for its "ready" line. */
export async function startServer(
  options: { dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv } = {},
) {
  const dataDir = options.dataDir ?? tempDir();
  const args = [
    SERVER_JS,
    '--host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--http-port',
    '0',
    '--udp-port',
    '0',
    '--tls-tcp-port',
    '0',
    '--https-port',
    '0',
    '--data-dir',
    dataDir,
    // Tests written before accounts pick plain nicknames: they run with the old naming rules
    // unless they choose a guest policy themselves (identity tests do).
    ...(options.args?.includes('--guests') || options.env?.CHAT_GUESTS ? [] : ['--guests', 'open']),
    ...(options.args ?? []),
  ];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready in 20 s\n${out}\n${err}`)), 20_000);
    const check = () => {
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before ready\n${out}\n${err}`));
    });
  });
  const urls: Record<string, string> = {};
  for (const m of out.matchAll(/^listening (\w+) (\S+)$/gm)) urls[m[1]!] = m[2]!;
  const ca = /^dev CA (\S+) pin (\S+)$/m.exec(out);
  const server: RunningServer = {
    proc,
    dataDir,
    urls,
    caPath: ca?.[1],
    caPin: ca?.[2],
    stdout: () => out,
    stderr: () => err,
    port(name) {
      const u = urls[name];
      if (!u) throw new Error(`no ${name} listener in:\n${out}`);
      return Number(new URL(u).port);
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return server;
}
