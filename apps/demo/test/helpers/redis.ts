import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { describeWithPeers, findPeer, peerPath } from '../../../../test-support/peers.js';

/** True when redis-server is installed (REDIS_SERVER, NET_PEER_REDIS_SERVER or PATH). */
export function redisAvailable(): boolean {
  return findPeer('redis-server') !== undefined;
}

/**
 * A describe block that needs redis-server: skipped with a recorded reason without it, failed
 * under CI=true (test-support/peers.ts).
 */
export function describeWithRedis(title: string, body: () => void): void {
  describeWithPeers(['redis-server'], title, body);
}

/** A free loopback port: bind port 0, read it, close. Redis needs a number on its command line. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, '127.0.0.1', () => done(true));
  });
}

export interface RedisInstance {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Logs of every run of this instance (redis-server writes to stdout). */
  log(): string;
  running(): boolean;
  /** Stop redis-server (SIGTERM by default: it fsyncs the AOF and exits) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start the same instance again: same port, same directory, so the AOF is replayed. */
  start(): Promise<void>;
  /** Stop and delete the temporary directory. */
  destroy(): Promise<void>;
}

/**
 * A real redis-server for tests on a free loopback port with its own temporary directory,
 * AOF on and fsynced on every write (what the chat's "acknowledged means stored" needs), no RDB.
 */
export async function startRedis(options: { extraArgs?: string[] } = {}): Promise<RedisInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'chat-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async () => {
    if (proc) throw new Error('redis-server already running');
    const child = spawn(
      peerPath('redis-server'),
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
        // Later arguments win: tests use this for maxmemory, and to prove the durability check.
        ...(options.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        if (proc === child) proc = undefined;
        resolve();
      }),
    );
    // The port may briefly stay busy after a stop; poll until it accepts, bounded.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${output}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not listen on ${port} within 15 s:\n${output}`);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const child = proc;
    if (!child) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  try {
    await assertDurableConfig(port);
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    log: () => output,
    running: () => proc !== undefined,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The chat's "acknowledged means durable" holds only with an fsynced append-only file: ask the
 * running server (CONFIG GET) instead of trusting the command line, so a test never passes against
 * a Redis that would lose acknowledged messages in a crash.
 */
async function assertDurableConfig(port: number): Promise<void> {
  const c = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2 });
  c.on('error', () => {});
  await c.connect();
  try {
    const reply = (await c.sendCommand(['CONFIG', 'GET', 'append*'])) as string[];
    const config = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) config.set(reply[i]!, reply[i + 1]!);
    if (config.get('appendonly') !== 'yes' || config.get('appendfsync') !== 'always') {
      throw new Error(
        `test Redis must run with appendonly yes, appendfsync always; got ${JSON.stringify([...config])}`,
      );
    }
  } finally {
    await c.close();
  }
}

/** Poll an async condition until it holds; bounded. (clients.ts' waitFor is for sync checks.) */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
