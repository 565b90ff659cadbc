// Load generator: N WebSocket clients in one room of a real server process; a sender posts at a
// fixed rate and every client timestamps the fan-out. Prints p50/p99 delivery latency and server
// memory per connection for growing N, and the largest N with p99 < 100 ms.
//
//   node bench/load.mjs [--sizes 100,1000,2000,5000,10000] [--rate 10] [--seconds 4] [--budget 80] [--tmpfs]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect } from '@net/ws-handshake';
import { pinPlan, pinSelfAsLoad, spawnOn } from '../../../scripts/bench/lib.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,2000,5000,10000' },
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '4' },
    budget: { type: 'string', default: '80' },
    concurrency: { type: 'string', default: '200' },
    // Put the message log on tmpfs: fdatasync becomes free, isolating fan-out from disk latency.
    tmpfs: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const budgetMs = Number(values.budget) * 1000;
const started = Date.now();
const SERVER = new URL('../dist/server.js', import.meta.url).pathname;

const dataDir = mkdtempSync(join(values.tmpfs ? '/dev/shm' : tmpdir(), 'chat-bench-'));
// Server on core 0, this load generator on core 1, when there are two cores and taskset.
const plan = pinPlan();
const pinning = pinSelfAsLoad(plan);
const server = spawnOn(
  plan.server,
  process.execPath,
  [
    ...(process.env.BENCH_SERVER_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SERVER_PROF] : []),
    SERVER,
    '--host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--http-port',
    '0',
    '--udp-port',
    '0',
    '--data-dir',
    dataDir,
    '--rate',
    '100000',
    '--burst',
    '100000',
    '--history',
    '0',
    '--log-level',
    'warn',
    // Every simulated client comes from 127.0.0.1: lift the per-address and WebSocket caps.
    '--max-conns-per-address',
    '1000000',
    '--max-ws',
    '1000000',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
  plan,
);
let out = '';
server.stdout.setEncoding('utf8').on('data', (d) => (out += d));
await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('server did not start')), 20_000);
  server.stdout.on('data', () => {
    if (!/^ready$/m.test(out)) return;
    clearTimeout(t);
    resolve();
  });
});
const http = /^listening http (\S+)$/m.exec(out)[1];
const wsUrl = `${http.replace('http', 'ws')}/ws`;

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// Latency samples of the current measurement window (ms).
let recording = false;
let samples = new Float64Array(1 << 20);
let count = 0;
let received = 0;
const MARK = '"text":"b:';

function onMessage(data) {
  const s = typeof data === 'string' ? data : data.toString('utf8');
  const i = s.indexOf(MARK);
  if (i === -1) return;
  received++;
  if (!recording) return;
  const sent = Number.parseFloat(s.slice(i + MARK.length, s.indexOf('"', i + MARK.length)));
  if (count === samples.length) {
    const bigger = new Float64Array(samples.length * 2);
    bigger.set(samples);
    samples = bigger;
  }
  samples[count++] = performance.now() - sent;
}

async function openClient() {
  const ws = await connect(wsUrl, { origin: http, timeout: 30_000 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('join timed out')), 30_000);
    ws.on('message', function first(d) {
      const s = String(d);
      if (s.includes('"type":"welcome"')) ws.send('{"type":"join","room":"lobby"}');
      else if (s.includes('"type":"history-end"')) {
        clearTimeout(t);
        ws.off('message', first);
        ws.on('message', onMessage);
        resolve();
      }
    });
  });
  ws.on('error', () => {});
  return ws;
}

const clients = [];
async function growTo(n) {
  const limit = Number(values.concurrency);
  while (clients.length < n) {
    const batch = Math.min(limit, n - clients.length);
    const opened = await Promise.all(Array.from({ length: batch }, openClient));
    clients.push(...opened);
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const rssBase = rssBytes(server.pid);
const sender = await openClient();
// Ack latency = durable append (write + fdatasync) as the sender sees it; separates disk from fan-out.
const pendingAcks = new Map();
let ackTimes = [];
sender.on('message', (d) => {
  const s = String(d);
  if (!s.startsWith('{"type":"ack"')) return;
  const ref = /"ref":"(\d+)"/.exec(s)?.[1];
  const t = pendingAcks.get(ref);
  if (t !== undefined) {
    ackTimes.push(performance.now() - t);
    pendingAcks.delete(ref);
  }
});
let refSeq = 0;
function sendTimed() {
  const ref = String(++refSeq);
  const now = performance.now();
  pendingAcks.set(ref, now);
  sender.send(`{"type":"send","room":"lobby","text":"b:${now.toFixed(3)}","ref":"${ref}"}`);
}
const rows = [];
console.log(
  `net-chat fan-out benchmark: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}`,
);
console.log(`pinning: ${pinning}`);
console.log(
  `one room, one sender at ${rate} msg/s for ${seconds} s per step; latency = send → receive at every member`,
);
console.log(
  `message log in ${dataDir}${values.tmpfs ? ' (tmpfs: fsync is free, this isolates fan-out)' : ' (disk: every ack waits for fdatasync)'}`,
);
console.log('');
console.log(
  '      N | connect s | deliveries/s |  p50 ms |  p99 ms |  max ms | lost | ack p99 ms | server RSS | RSS/conn',
);
for (const n of sizes) {
  if (Date.now() - started > budgetMs) {
    console.log(`(time budget of ${budgetMs / 1000} s reached, stopping before N=${n})`);
    break;
  }
  const t0 = performance.now();
  try {
    await growTo(n);
  } catch (err) {
    console.log(`N=${n}: could not open all connections: ${err.message}`);
    break;
  }
  const connectS = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const rss = rssBytes(server.pid);
  // Warm-up: a few messages so JIT and buffers settle before the measured window.
  received = 0;
  for (let i = 0; i < 5; i++) {
    sender.send(`{"type":"send","room":"lobby","text":"b:${performance.now().toFixed(3)}"}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Every warm-up delivery must have landed, or it would be counted in the window (bounded wait).
  const warmEnd = performance.now() + 30_000;
  while (received < 5 * (n + 1) && performance.now() < warmEnd) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  count = 0;
  received = 0;
  ackTimes = [];
  recording = true;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const tStart = performance.now();
  for (let i = 0; i < total; i++) {
    const due = tStart + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sendTimed();
  }
  // Let the last fan-out land (bounded).
  const expected = total * (n + 1);
  const drainEnd = performance.now() + 10_000;
  while (received < expected && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 20));
  recording = false;
  const elapsed = (performance.now() - tStart) / 1000;
  const sorted = samples.slice(0, count).sort();
  const row = {
    n,
    connectS,
    perSec: received / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    lost: expected - received,
    rss,
    perConn: (rss - rssBase) / n,
    ack99: percentile(Float64Array.from(ackTimes).sort(), 99),
  };
  rows.push(row);
  console.log(
    `${String(n).padStart(7)} | ${connectS.toFixed(1).padStart(9)} | ${Math.round(row.perSec).toString().padStart(12)} | ${row.p50.toFixed(1).padStart(7)} | ${row.p99.toFixed(1).padStart(7)} | ${row.max.toFixed(1).padStart(7)} | ${String(row.lost).padStart(4)} | ${row.ack99.toFixed(1).padStart(10)} | ${(rss / 2 ** 20).toFixed(0).padStart(7)} MiB | ${(row.perConn / 1024).toFixed(1).padStart(5)} KiB`,
  );
}
const ok = rows.filter((r) => r.p99 < 100 && r.lost === 0);
const best = ok.length > 0 ? Math.max(...ok.map((r) => r.n)) : 0;
console.log('');
console.log(
  `largest N with p99 < 100 ms and nothing lost: ${best || 'none'} (of ${rows.map((r) => r.n).join(', ')})`,
);
const thousand = rows.find((r) => r.n === 1000);
if (thousand)
  console.log(
    `N=1000: p50 ${thousand.p50.toFixed(1)} ms, p99 ${thousand.p99.toFixed(1)} ms, ${(thousand.perConn / 1024).toFixed(1)} KiB/conn`,
  );

for (const ws of clients) ws.terminate();
sender.terminate();
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
