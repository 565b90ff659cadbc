#!/usr/bin/env node
// Scale-out benchmark (issue 9): the same WebSocket load against
//   file   - one node, in-process fan-out + append-only file (the default)
//   redis1 - one node on Redis (--redis)
//   redis2 - two nodes on one Redis, clients spread across both
// interleaved (file, redis1, redis2, file, ...) because the machine is shared and noisy; prints
// the median per setup and the ratios. Needs `pnpm --filter demo build` and /usr/bin/redis-server.
//
//   node apps/demo/bench/scale-out.mjs            (defaults below; env overrides)
//   BENCH_CLIENTS=200 BENCH_RATE=400 BENCH_SECONDS=8 BENCH_ROUNDS=3 node apps/demo/bench/scale-out.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect } from '@net/ws-handshake';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_JS = join(here, '../dist/server.js');
const REDIS = process.env.REDIS_SERVER ?? 'redis-server'; // from PATH unless named
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 100);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 200); // messages per second, all senders together
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SETUPS = (process.env.BENCH_SETUPS ?? 'file,redis1,redis2').split(',');
// 'always' is what "acknowledged = durable" needs; 'everysec' shows what the fsync costs.
const FSYNC = process.env.BENCH_REDIS_FSYNC ?? 'always';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const ok = await new Promise((r) => {
      const s = new Socket();
      s.once('error', () => r(false));
      s.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} not listening`);
}

async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const port = await freePort();
  const proc = spawn(
    REDIS,
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
      FSYNC,
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  await waitPort(port, 10_000);
  return {
    pid: proc.pid,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startNode(extra) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-node-'));
  const prof = process.env.BENCH_SERVER_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SERVER_PROF]
    : [];
  const args = [
    ...prof,
    SERVER_JS,
    '--host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--http-port',
    '0',
    '--udp-port',
    '0',
  ];
  // Every simulated client comes from 127.0.0.1: lift the per-address and WebSocket caps.
  args.push('--data-dir', dataDir, '--rate', '100000', '--burst', '100000', '--log-level', 'error');
  args.push('--max-conns-per-address', '1000000', '--max-ws', '1000000', ...extra);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`node not ready:\n${out}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once('exit', (c) => reject(new Error(`node exited ${c}:\n${out}`)));
  });
  const http = /^listening http (\S+)$/m.exec(out)[1];
  return {
    http,
    pid: proc.pid,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One WebSocket client in room `bench`; records fan-out latency of every live message. */
async function client(http, nick, samples, counter) {
  const ws = await connect(`${http.replace(/^http/, 'ws')}/ws`, {
    origin: http,
    maxPayload: 1 << 20,
    timeout: 20_000,
  });
  const waiters = new Map();
  ws.on('message', (d) => {
    const s = String(d);
    // Live messages are most frames: read the send time out of the text without JSON.parse, so
    // the load generator (on the same 2 cores) spends as little as possible per delivery.
    if (s.startsWith('{"type":"message"') && !s.includes('"replay":true')) {
      const at = s.indexOf('"text":"') + 8;
      samples.push(performance.now() - Number(s.slice(at, s.indexOf('"', at))));
      counter.delivered++;
      return;
    }
    const f = JSON.parse(s);
    const w = waiters.get(f.type);
    if (w) {
      waiters.delete(f.type);
      w(f);
    }
  });
  ws.on('error', () => {});
  const next = (type) => new Promise((r) => waiters.set(type, r));
  const hello = next('welcome');
  await hello;
  const n = next('nick');
  ws.send(JSON.stringify({ type: 'nick', nick }));
  await n;
  const h = next('history-end');
  ws.send(JSON.stringify({ type: 'join', room: 'bench' }));
  await h;
  return ws;
}

/** Resident memory of a process in MiB (Linux /proc). */
async function rssMiB(pid) {
  try {
    const { readFile } = await import('node:fs/promises');
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc, USER_HZ = 100). */
async function cpuMs(pid) {
  try {
    const { readFile } = await import('node:fs/promises');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

async function run(setup) {
  let redis;
  const nodes = [];
  const sockets = [];
  try {
    if (setup === 'file') nodes.push(await startNode([]));
    else {
      redis = await startRedis();
      const n = setup === 'redis2' ? 2 : 1;
      for (let i = 0; i < n; i++) nodes.push(await startNode(['--redis', redis.url]));
    }
    const samples = [];
    const counter = { delivered: 0 };
    for (let i = 0; i < CLIENTS; i++) {
      // Spread clients (and so senders) round-robin over the nodes, like a load balancer would.
      sockets.push(await client(nodes[i % nodes.length].http, `u${i}`, samples, counter));
    }
    await sleep(300);
    samples.length = 0;
    counter.delivered = 0;
    const senders = sockets.slice(0, Math.min(SENDERS, sockets.length));
    const interval = (1000 * senders.length) / RATE;
    const pids = [...nodes.map((n) => n.pid), ...(redis ? [redis.pid] : [])];
    const cpu0 = await Promise.all(pids.map(cpuMs));
    const start = performance.now();
    let sent = 0;
    const timers = senders.map((ws, i) => {
      const tick = () => {
        ws.send(JSON.stringify({ type: 'send', room: 'bench', text: String(performance.now()) })).catch(
          () => {},
        );
        sent++;
      };
      let t;
      const first = setTimeout(
        () => {
          tick();
          t = setInterval(tick, interval);
        },
        (interval * i) / senders.length,
      );
      return () => {
        clearTimeout(first);
        clearInterval(t);
      };
    });
    await sleep(SECONDS * 1000);
    for (const stop of timers) stop();
    const elapsed = (performance.now() - start) / 1000;
    await sleep(1000); // let in-flight messages land (counted as delivered, latency included)
    const cpu1 = await Promise.all(pids.map(cpuMs));
    // Server-side CPU per delivered message (nodes + Redis): robust to the machine's noise.
    const cpuUs = (1000 * (sum(cpu1) - sum(cpu0))) / Math.max(1, counter.delivered);
    const redisShare = redis ? (cpu1.at(-1) - cpu0.at(-1)) / Math.max(1, sum(cpu1) - sum(cpu0)) : 0;
    const mem = (await Promise.all(nodes.map((n) => rssMiB(n.pid)))).reduce((a, b) => a + b, 0);
    samples.sort((a, b) => a - b);
    const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? Number.NaN;
    return {
      setup,
      sentPerSec: sent / elapsed,
      deliveredPerSec: counter.delivered / elapsed,
      expected: sent * CLIENTS,
      delivered: counter.delivered,
      p50: q(0.5),
      p99: q(0.99),
      rssMiB: mem,
      cpuUs,
      redisShare,
    };
  } finally {
    await Promise.allSettled(sockets.map((ws) => ws.close()));
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await redis?.stop();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

console.log(
  `scale-out bench: ${CLIENTS} WebSocket clients in one room, ${SENDERS} senders, ${RATE} msg/s offered for ${SECONDS} s, ` +
    `${ROUNDS} interleaved rounds; Redis appendfsync ${FSYNC}; ${cpus().length} CPUs, Node ${process.version}`,
);
const results = Object.fromEntries(SETUPS.map((s) => [s, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const setup of SETUPS) {
    const r = await run(setup);
    results[setup].push(r);
    console.log(
      `  round ${round + 1} ${setup.padEnd(6)} sent ${r.sentPerSec.toFixed(0)}/s delivered ${r.deliveredPerSec.toFixed(0)}/s ` +
        `(${r.delivered}/${r.expected}) p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms rss ${r.rssMiB.toFixed(0)} MiB ` +
        `server CPU ${r.cpuUs.toFixed(1)} µs/delivery (Redis ${(100 * r.redisShare).toFixed(0)} %)`,
    );
  }
}
console.log('\nmedians:');
const summary = {};
for (const setup of SETUPS) {
  const rs = results[setup];
  summary[setup] = {
    delivered: median(rs.map((r) => r.deliveredPerSec)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    rss: median(rs.map((r) => r.rssMiB)),
    cpu: median(rs.map((r) => r.cpuUs)),
  };
  const m = summary[setup];
  console.log(
    `  ${setup.padEnd(6)} delivered ${m.delivered.toFixed(0)} msg/s  p50 ${m.p50.toFixed(1)} ms  p99 ${m.p99.toFixed(1)} ms  rss ${m.rss.toFixed(0)} MiB  CPU ${m.cpu.toFixed(1)} µs/delivery`,
  );
}
if (summary.file && summary.redis1) {
  console.log(
    `redis1 vs file: delivered x${(summary.redis1.delivered / summary.file.delivered).toFixed(2)}, p99 x${(summary.redis1.p99 / summary.file.p99).toFixed(2)}, CPU/delivery x${(summary.redis1.cpu / summary.file.cpu).toFixed(2)}`,
  );
}
if (summary.redis1 && summary.redis2) {
  console.log(
    `redis2 vs redis1: delivered x${(summary.redis2.delivered / summary.redis1.delivered).toFixed(2)}, p99 x${(summary.redis2.p99 / summary.redis1.p99).toFixed(2)}, CPU/delivery x${(summary.redis2.cpu / summary.redis1.cpu).toFixed(2)}`,
  );
}
