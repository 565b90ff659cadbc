// The demo chat against a minimal socket.io 4 chat server (bench/socketio-server.mjs), same load:
// N WebSocket clients in one room, one sender posting timestamped messages at stepped rates; every
// member timestamps the fan-out. Per server and N: the highest deliveries/s whose p99 latency stays
// under 100 ms with nothing lost, server CPU per delivery at that step (/proc/<pid>/stat), and
// server memory per connection (RSS). The demo runs with its message log on disk (every ack waits
// for fdatasync) and on tmpfs. Server on core 0, this load generator on core 1 (taskset).
//   node bench/socketio.mjs [--sizes 1000,5000,10000] [--seconds 3] [--kinds demo-disk,demo-tmpfs,socketio]
//   BENCH_SMOKE=1 (sizes 20, 1 s steps). Results: bench/results.json.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '@net/ws-handshake';
import { io as ioClient } from 'socket.io-client';
import {
  header,
  machine,
  pinPlan,
  pinSelfAsLoad,
  printRow,
  procCpuMicros,
  row,
  SMOKE,
  sleep,
  spawnOn,
  writeResults,
} from '../../../scripts/bench/lib.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: SMOKE ? '20' : '1000,5000,10000' },
    seconds: { type: 'string', default: SMOKE ? '1' : '3' },
    kinds: { type: 'string', default: 'demo-disk,demo-tmpfs,socketio' },
    // Offered deliveries/s per step (message rate = deliveries / N), stopping at the first miss.
    deliveries: { type: 'string', default: SMOKE ? '200,400' : '5000,10000,20000,40000,80000,160000' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const seconds = Number(values.seconds);
const kinds = values.kinds.split(',');
const steps = values.deliveries.split(',').map(Number);
const here = fileURLToPath(new URL('.', import.meta.url));
const plan = pinPlan();
const facts = machine(here, pinSelfAsLoad(plan));
console.log(header('demo vs socket.io 4', facts));
const MARK = '"text":"b:';

async function startServer(kind) {
  let dataDir;
  let args;
  if (kind === 'socketio') {
    args = [join(here, 'socketio-server.mjs')];
  } else {
    dataDir = mkdtempSync(join(kind === 'demo-tmpfs' ? '/dev/shm' : tmpdir(), 'chat-sio-bench-'));
    args = [
      join(here, '..', 'dist', 'server.js'),
      ...['--host', '127.0.0.1', '--tcp-port', '0', '--http-port', '0', '--udp-port', '0'],
      ...[
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
      ],
    ];
  }
  const child = spawnOn(plan.server, process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }, plan);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} did not start`)), 20_000);
    child.stdout.on('data', () => {
      const sio = /^listening (\d+)$/m.exec(out);
      const demo = /^ready$/m.test(out) ? /^listening http (\S+)$/m.exec(out) : null;
      if (sio) resolve(`http://127.0.0.1:${sio[1]}`);
      else if (demo) resolve(demo[1]);
      else return;
      clearTimeout(t);
    });
  });
  return {
    child,
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

/** Opens one member; `onText` sees every text frame after the join completed. Returns { send, close }. */
async function openClient(kind, url, onText) {
  if (kind === 'socketio') {
    const socket = ioClient(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 30_000,
    });
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('socket.io join timed out')), 30_000);
      socket.on('connect_error', reject);
      const first = (s) => {
        if (s.includes('"type":"welcome"')) socket.send('{"type":"join","room":"lobby"}');
        else if (s.includes('"type":"history-end"')) {
          clearTimeout(t);
          socket.off('message', first);
          socket.on('message', onText);
          resolve();
        }
      };
      socket.on('message', first);
    });
    return { send: (s) => socket.send(s), close: () => socket.disconnect() };
  }
  const ws = await connect(`${url.replace('http', 'ws')}/ws`, { origin: url, timeout: 30_000 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('join timed out')), 30_000);
    ws.on('message', function first(d) {
      const s = String(d);
      if (s.includes('"type":"welcome"')) ws.send('{"type":"join","room":"lobby"}');
      else if (s.includes('"type":"history-end"')) {
        clearTimeout(t);
        ws.off('message', first);
        ws.on('message', (m) => onText(String(m)));
        resolve();
      }
    });
  });
  ws.on('error', () => {});
  return { send: (s) => ws.send(s), close: () => ws.terminate() };
}

async function runOne(kind, n) {
  const server = await startServer(kind);
  let recording = false;
  let received = 0;
  let lat = [];
  const onText = (s) => {
    const i = s.indexOf(MARK);
    if (i === -1) return;
    received++;
    if (recording) lat.push(performance.now() - Number.parseFloat(s.slice(i + MARK.length)));
  };
  const rssBefore = rss(server.child.pid);
  const clients = [];
  for (let i = 0; i < n; i += 200) {
    clients.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(200, n - i) }, () => openClient(kind, server.url, onText)),
      )),
    );
  }
  const sender = await openClient(kind, server.url, onText);
  let acks = 0;
  await sleep(500);
  const memPerConn = (rss(server.child.pid) - rssBefore) / n;
  let best = { deliveries: 0, p99: Number.NaN, cpuPerDelivery: Number.NaN, offered: 0 };
  const stepsRun = [];
  for (const offered of steps) {
    const rate = offered / n;
    const total = Math.max(1, Math.round(rate * seconds));
    received = 0;
    lat = [];
    recording = true;
    const cpu0 = procCpuMicros(server.child.pid);
    const t0 = performance.now();
    for (let k = 0; k < total; k++) {
      const wait = t0 + (k * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      sender.send(
        `{"type":"send","room":"lobby","text":"b:${performance.now().toFixed(3)}","ref":"${++acks}"}`,
      );
    }
    const expected = total * (n + 1);
    const end = performance.now() + 10_000;
    while (received < expected && performance.now() < end) await sleep(20);
    recording = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = procCpuMicros(server.child.pid) - cpu0;
    lat.sort((a, b) => a - b);
    const p99 = lat[Math.min(lat.length - 1, Math.floor(0.99 * lat.length))] ?? Number.NaN;
    const step = {
      offered,
      deliveries: received / elapsed,
      p99,
      lost: expected - received,
      cpuPerDelivery: cpu / received,
    };
    stepsRun.push(step);
    console.log(
      `  ${kind} N=${n}: offered ${offered}/s -> ${Math.round(step.deliveries)}/s, p99 ${p99.toFixed(1)} ms, lost ${step.lost}, ${step.cpuPerDelivery.toFixed(2)} µs CPU/delivery`,
    );
    if (!(p99 < 100) || step.lost > 0) break;
    best = step;
    await sleep(300);
  }
  for (const c of clients) c.close();
  sender.close();
  await server.stop();
  return { ...best, memPerConn, steps: stepsRun };
}

const LABELS = {
  'demo-disk': 'demo, log on disk (fdatasync per ack)',
  'demo-tmpfs': 'demo, log on tmpfs',
  socketio: 'socket.io 4 (WebSocket only, no persistence)',
};
const started = Date.now();
const rows = [];
const raw = {};
for (const n of sizes) {
  const res = {};
  for (const kind of kinds) res[kind] = await runOne(kind, n);
  raw[n] = res;
  const impls = (key) =>
    Object.fromEntries(kinds.map((k) => [k, { label: LABELS[k], values: [res[k][key]] }]));
  const cmp = kinds
    .filter((k) => k !== 'socketio' && kinds.includes('socketio'))
    .map((k) => ({ ours: k, anchor: 'socketio' }));
  const title = `${n.toLocaleString('en-US')} clients in one room`;
  rows.push(
    row({
      id: `n${n}-deliveries`,
      title,
      metric: 'deliveries/s with p99 < 100 ms',
      unit: '/s',
      headline: n === sizes.at(-1),
      impls: impls('deliveries'),
      comparisons: cmp.map((c) => ({ ...c, target: '>= 2' })),
    }),
    row({
      id: `n${n}-cpu`,
      title,
      metric: 'server CPU per delivery at that rate',
      unit: 'µs',
      better: 'lower',
      impls: impls('cpuPerDelivery'),
      comparisons: cmp.map((c) => ({ ...c, target: '<= 0.5' })),
    }),
    row({
      id: `n${n}-mem`,
      title,
      metric: 'server RSS per connection',
      unit: 'bytes',
      better: 'lower',
      impls: impls('memPerConn'),
      comparisons: cmp,
    }),
  );
}
for (const r of rows) printRow(r);
const total = (Date.now() - started) / 1000;
console.log(`\ntotal ${total.toFixed(1)} s`);
writeResults(
  here,
  'demo vs socket.io',
  facts,
  { sizes, seconds, offeredDeliveries: steps, kinds, seconds_total: total },
  rows,
  { steps: raw },
);
process.exit(0);
