// The demo chat against a minimal socket.io 4 chat server (bench/socketio-server.mjs), same load:
// N WebSocket clients in one room, one more client posting timestamped messages with an
// acknowledgement each; every member timestamps the fan-out. Per server and N it searches the
// highest offered rate whose deliveries all arrive with p99 latency < 100 ms and every ack back
// (doubling from 20,000 deliveries/s, halving if that misses, then two bisection steps), and
// reports those deliveries/s, the server's CPU time per delivery there (/proc/<pid>/stat), the CPU
// per delivery of the demo at socket.io's best rate (same load; socket.io runs first for each N),
// and server RSS per connection. The demo runs with its message log on disk (every ack waits for
// fdatasync) and on a tmpfs mounted for the run (unmounted at the end; root needed, else
// /dev/shm). Server on core 0, this load generator on core 1 (taskset). Both servers are driven by
// the same minimal client (raw-ws.mjs): the generator's cost per delivery is the same for both.
//
//   node bench/socketio.mjs [--sizes 1000,5000,10000] [--seconds 3] [--kinds demo-disk,demo-tmpfs,socketio]
//   node bench/socketio.mjs --sizes 10000 --kinds demo-tmpfs --fixed 20000,40000   (profiling, with
//   BENCH_SERVER_PROF=<dir> and/or BENCH_SERVER_HOOKS=1; writes no results)
//   BENCH_SMOKE=1: sizes 50, 1 s windows, figures never shown. Results: bench/results.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
import { openRaw, text } from './raw-ws.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: SMOKE ? '50' : '1000,5000,10000' },
    seconds: { type: 'string', default: SMOKE ? '1' : '3' },
    kinds: { type: 'string', default: 'demo-disk,demo-tmpfs,socketio' },
    // First offered deliveries/s of the search.
    start: { type: 'string', default: SMOKE ? '500' : '20000' },
    'max-steps': { type: 'string', default: '12' },
    // Seconds after which the remaining bisection steps are skipped (keeps a full run near 11 min).
    budget: { type: 'string', default: '600' },
    // Profiling: run exactly these offered deliveries/s (comma list), no search, no results file.
    fixed: { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const seconds = Number(values.seconds);
const kinds = values.kinds.split(',');
const START = Number(values.start);
const MAX_STEPS = Number(values['max-steps']);
const MIN_MESSAGES = 5; // per step, so that a slow rate at large N still has several fan-outs
const P99_MS = 100;
const started = Date.now();
const here = fileURLToPath(new URL('.', import.meta.url));
const plan = pinPlan();
const facts = machine(here, pinSelfAsLoad(plan));
console.log(header('demo vs socket.io 4', facts));

// ---- where the demo's log lives ---------------------------------------------------------------
const TMPFS_MAGIC = 0x01021994;
const fsType = (dir) =>
  statfsSync(dir).type === TMPFS_MAGIC ? 'tmpfs' : `0x${statfsSync(dir).type.toString(16)}`;
let tmpfsDir = null; // our own mount, unmounted on exit
let tmpfsNote = '';
function tmpfsRoot() {
  if (tmpfsDir) return tmpfsDir;
  const dir = mkdtempSync(join(tmpdir(), 'chat-sio-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    tmpfsDir = dir;
    tmpfsNote = `tmpfs mounted at ${dir} for the run`;
    return dir;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    tmpfsNote = `/dev/shm (mount failed: ${String(err.stderr ?? err.message).trim()})`;
    return '/dev/shm';
  }
}
function unmountTmpfs() {
  if (!tmpfsDir) return;
  try {
    execFileSync('umount', [tmpfsDir], { stdio: 'ignore' });
    rmSync(tmpfsDir, { recursive: true, force: true });
  } catch {
    console.error(`could not unmount ${tmpfsDir}: run umount ${tmpfsDir}`);
  }
  tmpfsDir = null;
}
const live = new Set(); // server children, killed on any exit
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  unmountTmpfs();
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// Profiling a server (not for figures): BENCH_SERVER_PROF=<dir> writes a .cpuprofile there,
// BENCH_SERVER_HOOKS=1 prints its event-loop delay and GC totals (server-hooks.mjs) at exit;
// BENCH_DEMO_SERVER=<path to a built server.js> runs another build of the demo (A/B runs).
const NODE_FLAGS = [
  ...(process.env.BENCH_SERVER_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_SERVER_PROF] : []),
  ...(process.env.BENCH_SERVER_HOOKS ? ['--import', join(here, 'server-hooks.mjs')] : []),
];

// ---- servers ------------------------------------------------------------------------------------
async function startServer(kind) {
  let dataDir;
  let args;
  if (kind === 'socketio') {
    args = [...NODE_FLAGS, join(here, 'socketio-server.mjs')];
  } else {
    const base = kind === 'demo-tmpfs' ? tmpfsRoot() : tmpdir();
    if (kind === 'demo-disk' && fsType(base) === 'tmpfs') throw new Error(`${base} is tmpfs, not a disk`);
    mkdirSync(base, { recursive: true });
    dataDir = mkdtempSync(join(base, 'chat-sio-bench-'));
    args = [
      ...NODE_FLAGS,
      process.env.BENCH_DEMO_SERVER ?? join(here, '..', 'dist', 'server.js'),
      ...['--host', '127.0.0.1', '--tcp-port', '0', '--http-port', '0', '--udp-port', '0'],
      ...['--data-dir', dataDir, '--history', '0', '--log-level', 'warn'],
      // One sender posts far above the interactive default rate.
      ...['--rate', '100000', '--burst', '100000'],
      // Every simulated client comes from 127.0.0.1: lift the per-address and WebSocket caps.
      ...['--max-conns-per-address', '1000000', '--max-ws', '1000000'],
    ];
  }
  const child = spawnOn(plan.server, process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }, plan);
  live.add(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} did not start`)), 20_000);
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code} before it was ready`)));
    child.stdout.on('data', () => {
      const sio = /^listening (\d+)$/m.exec(out);
      const demo = /^ready$/m.test(out) ? /^listening http http:\/\/[^:]+:(\d+)/m.exec(out) : null;
      const p = sio?.[1] ?? demo?.[1];
      if (p === undefined) return;
      clearTimeout(t);
      resolve(Number(p));
    });
  });
  return {
    child,
    port,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      live.delete(child);
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

// ---- the two wire protocols, as the same small state machines -----------------------------------
const startsWith = (buf, s, e, prefix) =>
  e - s >= prefix.length && buf.latin1Slice(s, s + prefix.length) === prefix;
const PROTOCOLS = {
  demo: {
    path: '/ws',
    // welcome -> join -> joined, history-end
    handshake(conn, f) {
      if (f.includes('"type":"welcome"')) conn.send('{"type":"join","room":"lobby"}');
      return f.includes('"type":"history-end"');
    },
    post: (ts, ref) => `{"type":"send","room":"lobby","text":"b:${ts}","ref":"${ref}"}`,
    isAck: (buf, s, e) => startsWith(buf, s, e, '{"type":"ack"'),
    ping: () => false,
  },
  socketio: {
    path: '/socket.io/?EIO=4&transport=websocket',
    // Engine.IO open "0{...}" -> socket.io connect "40" -> "40{sid}" -> join with ack 0 -> "430[...]"
    handshake(conn, f) {
      if (f.startsWith('0{')) conn.send('40');
      else if (f.startsWith('40')) conn.send('420["join",{"room":"lobby"}]');
      else if (f === '2') conn.send('3');
      return f.startsWith('430[');
    },
    post: (ts, ref) => `42${ref}["send",{"room":"lobby","text":"b:${ts}"}]`,
    isAck: (buf, s, e) => buf[s] === 0x34 && buf[s + 1] === 0x33 && e - s > 2,
    // Engine.IO heartbeat: the server sends "2", the client must answer "3".
    ping: (conn, buf, s, e) => {
      if (e - s !== 1 || buf[s] !== 0x32) return false;
      conn.send('3');
      return true;
    },
  },
};

const MARK = Buffer.from('"text":"b:');
/** Parses the decimal at buf[p...] (digits, optional fraction): the sender's performance.now(). */
function readStamp(buf, p) {
  let v = 0;
  let c = buf[p];
  while (c >= 48 && c <= 57) {
    v = v * 10 + c - 48;
    c = buf[++p];
  }
  if (c === 46) {
    let scale = 0.1;
    c = buf[++p];
    while (c >= 48 && c <= 57) {
      v += (c - 48) * scale;
      scale /= 10;
      c = buf[++p];
    }
  }
  return v;
}

// Measurement state shared by every client's frame handler.
let recording = false;
let received = 0;
let acks = 0;
let lat = new Float64Array(1 << 20);
let nLat = 0;
function delivered(buf, p) {
  received++;
  if (!recording) return;
  if (nLat === lat.length) {
    const bigger = new Float64Array(lat.length * 2);
    bigger.set(lat);
    lat = bigger;
  }
  lat[nLat++] = performance.now() - readStamp(buf, p);
}

async function openClient(proto, port, isSender) {
  const P = PROTOCOLS[proto];
  const origin = `http://127.0.0.1:${port}`;
  let conn;
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${proto}: join timed out`)), 30_000);
    openRaw({ host: '127.0.0.1', port, path: P.path, origin }, (buf, s, e, c) => {
      conn = c;
      if (!P.handshake(conn, text(buf, s, e))) return;
      clearTimeout(t);
      conn.onFrame = (b, start, end) => {
        const i = b.indexOf(MARK, start);
        if (i !== -1 && i < end) return delivered(b, i + MARK.length);
        if (P.ping(conn, b, start, end)) return;
        if (isSender && P.isAck(b, start, end)) acks++;
      };
      resolve();
    }).then((c) => {
      conn = c;
      c.socket.once('close', () => reject(new Error(`${proto}: closed during join`)));
    }, reject);
  });
  return conn;
}

// ---- one step: `rate` messages/s for the window, then the drain -------------------------------
async function step(server, sender, post, n, offered) {
  const rate = offered / (n + 1);
  const total = Math.max(MIN_MESSAGES, Math.round(rate * seconds));
  const windowS = total / rate;
  received = 0;
  acks = 0;
  nLat = 0;
  recording = true;
  const cpu0 = procCpuMicros(server.child.pid);
  const load0 = process.cpuUsage();
  const mono0 = process.hrtime.bigint() / 1000n;
  const t0 = performance.now();
  for (let k = 0; k < total; k++) {
    const wait = t0 + (k * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    sender.send(post(performance.now().toFixed(3), k));
  }
  const expected = total * (n + 1);
  const lastSend = performance.now();
  while ((received < expected || acks < total) && performance.now() - lastSend < 5000) await sleep(10);
  recording = false;
  const wall = performance.now() - t0;
  const cpu = procCpuMicros(server.child.pid) - cpu0;
  const load = process.cpuUsage(load0);
  const got = received;
  const gotAcks = acks;
  // Let a missed step's stragglers land before the next one (bounded).
  for (let last = -1, end = performance.now() + 5000; last !== received && performance.now() < end; ) {
    last = received;
    await sleep(300);
  }
  const sorted = lat.subarray(0, nLat).sort();
  const p99 = sorted[Math.min(nLat - 1, Math.floor(0.99 * nLat))] ?? Number.NaN;
  return {
    offered,
    messagesPerSecond: rate,
    messages: total,
    deliveries: got / windowS,
    p50: sorted[Math.floor(0.5 * nLat)] ?? Number.NaN,
    p99,
    max: sorted[nLat - 1] ?? Number.NaN,
    lost: expected - got,
    acksMissing: total - gotAcks,
    cpuPerDelivery: cpu / Math.max(1, got),
    serverCpuShare: cpu / 1000 / wall,
    loadCpuShare: (load.user + load.system) / 1000 / wall,
    // CLOCK_MONOTONIC µs, the clock of a server .cpuprofile's timestamps (to cut the step out).
    monoUs: [Number(mono0), Number(process.hrtime.bigint() / 1000n)],
  };
}
const passed = (s) => s.p99 < P99_MS && s.lost === 0 && s.acksMissing === 0;

/** `sameLoad`: an offered rate to measure once more after the search (socket.io's best). */
async function runOne(kind, n, sameLoad) {
  const proto = kind === 'socketio' ? 'socketio' : 'demo';
  const server = await startServer(kind);
  const rssBefore = rss(server.child.pid);
  const tc = performance.now();
  const clients = [];
  for (let i = 0; i < n; i += 200) {
    const batch = Math.min(200, n - i);
    clients.push(
      ...(await Promise.all(Array.from({ length: batch }, () => openClient(proto, server.port, false)))),
    );
  }
  const sender = await openClient(proto, server.port, true);
  const connectS = (performance.now() - tc) / 1000;
  await sleep(1000);
  const memPerConn = (rss(server.child.pid) - rssBefore) / n;
  const post = PROTOCOLS[proto].post;
  // Warm-up at the starting rate (JIT, buffers), not recorded.
  await step(server, sender, post, n, START);
  const steps = [];
  const run = async (offered) => {
    const s = await step(server, sender, post, n, offered);
    steps.push(s);
    console.log(
      `  ${kind.padEnd(10)} N=${n}: offered ${Math.round(offered)}/s -> ${Math.round(s.deliveries)}/s, p50 ${s.p50.toFixed(1)} p99 ${s.p99.toFixed(1)} ms, lost ${s.lost}, acks missing ${s.acksMissing}, ${s.cpuPerDelivery.toFixed(2)} µs CPU/delivery, server ${(100 * s.serverCpuShare).toFixed(0)}% load gen ${(100 * s.loadCpuShare).toFixed(0)}% of a core`,
    );
    return s;
  };
  if (values.fixed) {
    for (const o of values.fixed.split(',').map(Number))
      console.log(`    window µs ${(await run(o)).monoUs.join(' ')}`);
    for (const c of clients) c.close();
    sender.close();
    await server.stop();
    return { steps };
  }
  let good = null;
  let bad = null;
  let offered = START;
  const first = await run(offered);
  if (passed(first)) {
    good = first;
    while (steps.length < MAX_STEPS - 2) {
      const s = await run((offered *= 2));
      if (!passed(s)) {
        bad = s;
        break;
      }
      good = s;
    }
  } else {
    bad = first;
    for (let i = 0; i < 3 && good === null; i++) {
      const s = await run((offered /= 2));
      if (passed(s)) good = s;
      else bad = s;
    }
  }
  // Two bisection steps (geometric) between the last pass and the first miss.
  const inBudget = () => Date.now() - started < Number(values.budget) * 1000;
  for (let i = 0; i < 2 && good && bad && inBudget(); i++) {
    const s = await run(Math.sqrt(good.offered * bad.offered));
    if (passed(s)) good = s;
    else bad = s;
  }
  // socket.io's own "same load" step is its best one; the demo measures socket.io's best rate.
  const target = sameLoad ?? good?.offered;
  let same = steps.find((st) => st.offered === target);
  if (target > 0 && same === undefined) same = await run(target);
  for (const c of clients) c.close();
  sender.close();
  await server.stop();
  await sleep(500);
  const none = { deliveries: 0, cpuPerDelivery: Number.NaN, p99: Number.NaN, offered: 0 };
  return { best: good ?? none, same, memPerConn, connectS, steps };
}

const LABELS = {
  'demo-disk': 'demo, log on disk (fdatasync before each ack)',
  'demo-tmpfs': 'demo, log on tmpfs',
  socketio: 'socket.io 4 (WebSocket only, no persistence)',
};
if (values.fixed) {
  for (const n of sizes) for (const kind of kinds) await runOne(kind, n);
  unmountTmpfs();
  process.exit(0);
}
const rows = [];
const raw = {};
try {
  for (const n of sizes) {
    const res = {};
    // socket.io first: its best rate is then offered to the demo once more (CPU at the same load).
    const order = [...kinds].sort((a, b) => (b === 'socketio') - (a === 'socketio'));
    for (const kind of order) res[kind] = await runOne(kind, n, res.socketio?.best.offered);
    raw[n] = res;
    const cmp = kinds
      .filter((k) => k !== 'socketio' && kinds.includes('socketio'))
      .map((k) => ({ ours: k, anchor: 'socketio' }));
    const impls = (f) =>
      Object.fromEntries(kinds.map((k) => [k, { label: LABELS[k], values: [f(res[k], k)] }]));
    const common = res.socketio?.best.offered;
    const title = `${n.toLocaleString('en-US')} clients in one room`;
    const headline = n === sizes.at(-1);
    rows.push(
      row({
        id: `n${n}-deliveries`,
        title,
        metric: 'deliveries/s with p99 < 100 ms, nothing lost',
        unit: '/s',
        headline,
        impls: impls((r) => r.best.deliveries),
        comparisons: cmp.map((c) => ({ ...c, target: '>= 2' })),
      }),
      row({
        id: `n${n}-cpu`,
        title,
        metric: 'server CPU per delivery at that rate',
        unit: 'µs',
        better: 'lower',
        headline,
        impls: impls((r) => r.best.cpuPerDelivery),
        comparisons: cmp.map((c) => ({ ...c, target: '<= 0.5' })),
      }),
      row({
        id: `n${n}-cpu-same-load`,
        title,
        metric: `server CPU per delivery at socket.io's best rate (${common ? Math.round(common).toLocaleString('en-US') : '—'} deliveries/s offered to each)`,
        unit: 'µs',
        better: 'lower',
        impls: impls((r) => r.same?.cpuPerDelivery ?? Number.NaN),
        comparisons: cmp.map((c) => ({ ...c, target: '<= 0.5' })),
      }),
      row({
        id: `n${n}-mem`,
        title,
        metric: 'server RSS per connection',
        unit: 'bytes',
        better: 'lower',
        impls: impls((r) => r.memPerConn),
        comparisons: cmp,
      }),
    );
  }
} finally {
  unmountTmpfs();
}
for (const r of rows) printRow(r);
const total = (Date.now() - started) / 1000;
console.log(`\ntotal ${total.toFixed(1)} s`);
writeResults(
  here,
  'demo vs socket.io',
  facts,
  {
    sizes,
    seconds,
    startDeliveries: START,
    kinds,
    p99Ms: P99_MS,
    diskFs: fsType(tmpdir()),
    tmpfs: tmpfsNote || 'not used',
    seconds_total: total,
  },
  rows,
  { steps: raw },
);
process.exit(0);
