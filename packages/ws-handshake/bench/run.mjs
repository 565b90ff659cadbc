// Benchmark: @net/ws-handshake vs ws 8 (pure JS, and with bufferutil + utf-8-validate) and a
// minimal unvalidated echo floor on node:net. Each server runs in its own child process, pinned to
// core 0; this process is the load generator (raw frames, pre-masked, header-only parsing), pinned
// to core 1, when there are two cores and taskset. Each round runs every implementation, in an
// order rotated per round. Headline: ping-pong (50 connections, one 1 KiB text message in flight
// each), server CPU per message beside messages/s. Results: bench/results.json.
//   node bench/run.mjs [--quick]   BENCH_ROUNDS, BENCH_ONLY=pingpong,echo,binary,broadcast,idle,
//   topics,h2 (comma list), BENCH_SMOKE=1 (tiny smoke run), IDLE_CONNECTIONS, TOPIC_SUBSCRIBERS,
//   H2_SOCKETS (default 1,000), BENCH_CPU_PROF=dir (profile the servers).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  header,
  machine,
  pinPlan,
  pinSelfAsLoad,
  printRow,
  rotate,
  row,
  SMOKE,
  spawnOn,
  writeResults,
} from '../../../scripts/bench/lib.mjs';

const quick = process.argv.includes('--quick') || SMOKE;
const here = fileURLToPath(new URL('.', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const EXTRA_ROUNDS = Math.min(ROUNDS, quick ? 1 : 3);
const IDLE_ROUNDS = Math.min(ROUNDS, 2);
const DURATION = quick ? 500 : 2000;
const IDLE_N = Number(process.env.IDLE_CONNECTIONS ?? (quick ? 500 : 10_000));
const plan = pinPlan();
const pinning = pinSelfAsLoad(plan);

function startServer(impl, mode) {
  const prof = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const env = { ...process.env };
  if (impl === 'ws') {
    // ws 8 loads bufferutil / utf-8-validate when installed; these make it pure JS.
    env.WS_NO_BUFFER_UTIL = '1';
    env.WS_NO_UTF_8_VALIDATE = '1';
  }
  const child = spawnOn(
    plan.server,
    process.execPath,
    ['--expose-gc', ...prof, `${here}server.mjs`, impl, mode],
    { stdio: ['pipe', 'pipe', 'inherit'], env },
    plan,
  );
  let buf = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i !== -1) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.findIndex((x) => line.startsWith(x.prefix));
      if (w !== -1) waiters.splice(w, 1)[0].resolve(line);
      i = buf.indexOf('\n');
    }
  });
  const expect = (prefix) => new Promise((resolve) => waiters.push({ prefix, resolve }));
  return {
    child,
    ready: expect('READY').then((l) => Number(l.split(' ')[1])),
    async memory() {
      const p = expect('MEM');
      child.stdin.write('MEM\n');
      const line = await p;
      return JSON.parse(line.slice(4));
    },
    /** Server process CPU time (user + system), microseconds. */
    async cpu() {
      const p = expect('CPU');
      child.stdin.write('CPU\n');
      return Number((await p).split(' ')[1]);
    },
    stop() {
      child.kill('SIGINT');
      return new Promise((r) => child.once('exit', r));
    },
  };
}

const MASK = randomBytes(4);
function clientFrame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  MASK.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ MASK[i & 3];
  return out;
}

/** Counts complete server frames without copying payloads. */
class FrameCounter {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.skip = 0;
    this.partial = null;
    this.len = 0;
  }
  push(chunk) {
    if (this.partial !== null) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        if (this.skip === 0) this.onFrame(this.len);
        continue;
      }
      const avail = n - i;
      if (avail < 2) break;
      let len = chunk[i + 1] & 127;
      let h = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = chunk.readUInt16BE(i + 2);
        h = 4;
      } else if (len === 127) {
        if (avail < 10) break;
        len = Number(chunk.readBigUInt64BE(i + 2));
        h = 10;
      }
      i += h;
      this.len = len;
      if (len === 0) this.onFrame(0);
      else this.skip = len;
    }
    if (i < n) this.partial = chunk.subarray(i);
  }
}

function connectRaw(port, path = '/') {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', reject);
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let acc = Buffer.alloc(0);
    const onData = (d) => {
      acc = Buffer.concat([acc, d]);
      const idx = acc.indexOf('\r\n\r\n');
      if (idx === -1) return;
      socket.removeListener('data', onData);
      if (!acc.subarray(0, 12).toString().includes('101')) return reject(new Error('handshake failed'));
      const conn = { socket, counter: null, rest: acc.subarray(idx + 4) };
      resolve(conn);
    };
    socket.on('data', onData);
  });
}

function attach(conn, onFrame) {
  conn.counter = new FrameCounter(onFrame);
  // Replies to one read leave in one writev, so the generator stays lighter than the server.
  conn.socket.on('data', (d) => {
    conn.socket.cork();
    conn.counter.push(d);
    conn.socket.uncork();
  });
  if (conn.rest.length > 0) conn.counter.push(conn.rest);
}

async function connectMany(port, n, path = '/', batch = 200) {
  const out = [];
  for (let i = 0; i < n; i += batch) {
    const part = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () => connectRaw(port, path)),
    );
    out.push(...part);
  }
  return out;
}

function closeAll(conns) {
  for (const c of conns) c.socket.destroy();
}

/** Echo: each connection keeps `depth` messages in flight; returns messages/s and MB/s. */
async function echoRun(impl, payload, opcode, conns, depth) {
  const server = startServer(impl, 'echo');
  const port = await server.ready;
  const clients = await connectMany(port, conns);
  const frameBuf = clientFrame(opcode, payload);
  let count = 0;
  let counting = false;
  for (const c of clients) {
    attach(c, () => {
      if (counting) count++;
      c.socket.write(frameBuf);
    });
    for (let i = 0; i < depth; i++) c.socket.write(frameBuf);
  }
  await new Promise((r) => setTimeout(r, 300)); // warm-up
  const cpuBefore = await server.cpu();
  counting = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, DURATION));
  const elapsed = (performance.now() - start) / 1000;
  counting = false;
  const cpuSpent = (await server.cpu()) - cpuBefore;
  closeAll(clients);
  await server.stop();
  return {
    msgs: count / elapsed,
    mbps: (count * payload.length) / elapsed / 1e6,
    cpuPerMsg: cpuSpent / count,
  };
}

/** Broadcast 1 -> N: latency from the control send to each client's receipt. */
async function broadcastRun(impl, n, rounds) {
  const server = startServer(impl, 'broadcast');
  const port = await server.ready;
  const clients = await connectMany(port, n);
  const control = await connectRaw(port, '/control');
  attach(control, () => {});
  const samples = [];
  let sentAt = 0;
  let received = 0;
  let done = null;
  for (const c of clients) {
    attach(c, () => {
      samples.push(performance.now() - sentAt);
      if (++received === n && done) done();
    });
  }
  await new Promise((r) => setTimeout(r, 200));
  const msg = clientFrame(1, Buffer.from('x'.repeat(64)));
  for (let i = 0; i < rounds; i++) {
    received = 0;
    const all = new Promise((r) => {
      done = r;
    });
    sentAt = performance.now();
    control.socket.write(msg);
    await all;
    await new Promise((r) => setTimeout(r, 5));
  }
  closeAll(clients);
  control.socket.destroy();
  await server.stop();
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  return { p50: q(0.5), p99: q(0.99) };
}

/** Memory per idle connection in the server process (heap + external + array buffers, after GC). */
async function idleRun(impl, n) {
  const server = startServer(impl, 'idle');
  const port = await server.ready;
  await new Promise((r) => setTimeout(r, 200));
  const before = await server.memory();
  const clients = await connectMany(port, n);
  await new Promise((r) => setTimeout(r, 500));
  const after = await server.memory();
  closeAll(clients);
  await server.stop();
  // `external` already includes `arrayBuffers`.
  const js = (m) => m.heapUsed + m.external;
  return { perConn: (js(after) - js(before)) / n, rssPerConn: (after.rss - before.rss) / n };
}

const LABELS = {
  net: '@net/ws-handshake',
  'net-bytes': '@net/ws-handshake, textAsBuffer',
  ws: 'ws 8 (pure JS)',
  'ws-native': 'ws 8 + bufferutil + utf-8-validate',
  floor: 'minimal unvalidated echo on node:net',
};
const wsVersion = (await import('ws/package.json', { with: { type: 'json' } })).default.version;
const facts = machine(here, pinning);
console.log(header(`@net/ws-handshake vs ws ${wsVersion}`, facts));
console.log(
  'ws (pure JS) runs with WS_NO_BUFFER_UTIL=1 WS_NO_UTF_8_VALIDATE=1; ws-native may load bufferutil and ' +
    'utf-8-validate (on Node >= 18.14 ws validates UTF-8 with buffer.isUtf8 either way).',
);

/** Runs fn(impl) for every impl, `rounds` times, rotating the order; returns per-impl result lists. */
async function rounds(impls, fn, n) {
  const res = Object.fromEntries(impls.map((k) => [k, []]));
  for (let r = 0; r < n; r++) for (const impl of rotate(impls, r)) res[impl].push(await fn(impl));
  return res;
}
const pick = (res, key) =>
  Object.fromEntries(
    Object.entries(res).map(([k, xs]) => [k, { label: LABELS[k], values: xs.map((x) => x[key]) }]),
  );
const against = (anchors) => anchors.map((anchor) => ({ ours: 'net', anchor }));

const started = Date.now();
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
const want = (k) => only === null || only.includes(k);
const rows = [];
const text = Buffer.alloc(1024, 0x61);
const all = ['net', 'ws', 'ws-native', 'floor'];
const anchors = ['ws', 'ws-native', 'floor'];
if (want('pingpong')) {
  const title = 'ping-pong: 50 connections, one 1 KiB text message in flight each';
  // textAsBuffer too: `ws` hands text out as bytes, our default decodes it to a string.
  const res = await rounds([...all, 'net-bytes'], (impl) => echoRun(impl, text, 1, 50, 1), ROUNDS);
  const withBytes = [...against(anchors), { ours: 'net-bytes', anchor: 'ws' }];
  rows.push(
    row({
      id: 'pingpong-cpu',
      title,
      metric: 'server CPU per message',
      unit: 'µs',
      better: 'lower',
      headline: true,
      impls: pick(res, 'cpuPerMsg'),
      comparisons: withBytes,
    }),
    row({
      id: 'pingpong-msgs',
      title,
      metric: 'messages/s',
      unit: 'msgs/s',
      headline: true,
      impls: pick(res, 'msgs'),
      comparisons: withBytes,
    }),
  );
}
if (want('echo')) {
  const title = 'echo: 50 connections, 4 x 1 KiB text messages in flight each (several messages per read)';
  const res = await rounds(all, (impl) => echoRun(impl, text, 1, 50, 4), EXTRA_ROUNDS);
  rows.push(
    row({
      id: 'echo4-cpu',
      title,
      metric: 'server CPU per message',
      unit: 'µs',
      better: 'lower',
      impls: pick(res, 'cpuPerMsg'),
      comparisons: against(anchors),
    }),
    row({
      id: 'echo4-msgs',
      title,
      metric: 'messages/s',
      unit: 'msgs/s',
      impls: pick(res, 'msgs'),
      comparisons: against(anchors),
    }),
  );
}
if (want('binary')) {
  const title = 'echo: 10 connections, 2 x 64 KiB binary messages in flight each';
  const impls = ['net', 'ws', 'ws-native'];
  const res = await rounds(impls, (impl) => echoRun(impl, randomBytes(65536), 2, 10, 2), EXTRA_ROUNDS);
  rows.push(
    row({
      id: 'binary-cpu',
      title,
      metric: 'server CPU per message',
      unit: 'µs',
      better: 'lower',
      impls: pick(res, 'cpuPerMsg'),
      comparisons: against(['ws', 'ws-native']),
    }),
    row({
      id: 'binary-mbps',
      title,
      metric: 'throughput',
      unit: 'MB/s',
      impls: pick(res, 'mbps'),
      comparisons: against(['ws', 'ws-native']),
    }),
  );
}
if (want('broadcast')) {
  const title = 'broadcast 1 -> 1,000 connections, 64-byte text';
  const res = await rounds(['net', 'ws'], (impl) => broadcastRun(impl, 1000, quick ? 10 : 40), EXTRA_ROUNDS);
  rows.push(
    row({
      id: 'broadcast-p50',
      title,
      metric: 'p50 latency',
      unit: 'ms',
      better: 'lower',
      impls: pick(res, 'p50'),
      comparisons: against(['ws']),
    }),
    row({
      id: 'broadcast-p99',
      title,
      metric: 'p99 latency',
      unit: 'ms',
      better: 'lower',
      impls: pick(res, 'p99'),
      comparisons: against(['ws']),
    }),
  );
}
if (want('idle')) {
  const title = `idle memory, ${IDLE_N.toLocaleString('en-US')} connections`;
  const res = await rounds(['net', 'ws'], (impl) => idleRun(impl, IDLE_N), IDLE_ROUNDS);
  rows.push(
    row({
      id: 'idle-heap',
      title,
      metric: 'heap + external per connection',
      unit: 'bytes',
      better: 'lower',
      impls: pick(res, 'perConn'),
      comparisons: against(['ws']),
    }),
    row({
      id: 'idle-rss',
      title,
      metric: 'RSS per connection',
      unit: 'bytes',
      better: 'lower',
      impls: pick(res, 'rssPerConn'),
      comparisons: against(['ws']),
    }),
  );
}
if (want('topics')) {
  // bench/topics.mjs: publish to N subscribers, ours (`wss.publish`) against a `ws` loop over
  // clients; it runs its own server processes and reports every round as one JSON line.
  const n = SMOKE ? 200 : Number(process.env.TOPIC_SUBSCRIBERS ?? 10_000);
  const publishes = SMOKE ? 5 : 50;
  const out = execFileSync(
    process.execPath,
    [
      `${here}topics.mjs`,
      '--json',
      '--n',
      String(n),
      '--publishes',
      String(publishes),
      '--rounds',
      String(EXTRA_ROUNDS),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  const line = out.split('\n').find((l) => l.startsWith('TOPICS_JSON '));
  if (!line) throw new Error(`topics bench printed no result:\n${out}`);
  const { results } = JSON.parse(line.slice('TOPICS_JSON '.length));
  const title = `topics: publish 256 B to ${n.toLocaleString('en')} subscribers, ${publishes} publishes`;
  const topicImpls = (key) => ({
    net: { label: LABELS.net, values: results.net.map((x) => x[key]) },
    ws: { label: `${LABELS.ws} (loop over clients)`, values: results.ws.map((x) => x[key]) },
  });
  rows.push(
    row({
      id: 'topics-cpu',
      title,
      metric: 'server CPU per delivery',
      unit: 'µs',
      better: 'lower',
      impls: topicImpls('cpuPerDelivery'),
      comparisons: against(['ws']),
    }),
    row({
      id: 'topics-publish',
      title,
      metric: 'time until every subscriber has it, per publish',
      unit: 'ms',
      better: 'lower',
      impls: topicImpls('perPublish'),
      comparisons: against(['ws']),
    }),
  );
}
if (want('h2')) {
  // bench/h2-sockets.mjs: N WebSockets over one HTTP/2 connection (RFC 8441) against one
  // HTTP/1.1 connection each, TLS both ways, our server and client; its own processes per round.
  const n = SMOKE ? 50 : Number(process.env.H2_SOCKETS ?? 1000);
  const out = execFileSync(
    process.execPath,
    [
      `${here}h2-sockets.mjs`,
      '--json',
      '--n',
      String(n),
      '--rounds',
      String(EXTRA_ROUNDS),
      '--concurrency',
      String(SMOKE ? 10 : 100),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  const line = out.split('\n').find((l) => l.startsWith('H2_SOCKETS_JSON '));
  if (!line) throw new Error(`h2-sockets bench printed no result:\n${out}`);
  const { results, concurrency } = JSON.parse(line.slice('H2_SOCKETS_JSON '.length));
  const title = `${n.toLocaleString('en-US')} WebSockets over TLS, ${concurrency} opening at a time: all on one HTTP/2 connection (RFC 8441) vs an HTTP/1.1 connection each`;
  const h2Impls = (key) => ({
    h2: { label: '@net/ws-handshake over one HTTP/2 connection', values: results.h2.map((x) => x[key]) },
    h1: { label: '@net/ws-handshake over HTTP/1.1', values: results.h1.map((x) => x[key]) },
  });
  const h2Row = (id, metric, unit, key) =>
    row({
      id,
      title,
      metric,
      unit,
      better: 'lower',
      impls: h2Impls(key),
      comparisons: [{ ours: 'h2', anchor: 'h1' }],
    });
  rows.push(
    h2Row('h2-open-all', 'time to open all', 'ms', 'openMs'),
    h2Row('h2-handshake-p50', 'handshake time per socket, p50', 'ms', 'p50'),
    h2Row('h2-handshake-p99', 'handshake time per socket, p99', 'ms', 'p99'),
    h2Row('h2-server-heap', 'server heap + external per socket', 'bytes', 'serverJs'),
    h2Row('h2-server-rss', 'server RSS per socket', 'bytes', 'serverRss'),
    h2Row('h2-client-heap', 'client heap + external per socket', 'bytes', 'clientJs'),
    h2Row('h2-client-rss', 'client RSS per socket', 'bytes', 'clientRss'),
  );
}
for (const r of rows) printRow(r);
const seconds = (Date.now() - started) / 1000;
console.log(`total ${seconds.toFixed(1)} s`);
writeResults(
  here,
  '@net/ws-handshake',
  facts,
  {
    rounds: ROUNDS,
    extraRounds: EXTRA_ROUNDS,
    idleRounds: IDLE_ROUNDS,
    durationMs: DURATION,
    idleConnections: IDLE_N,
    h2Sockets: SMOKE ? 50 : Number(process.env.H2_SOCKETS ?? 1000),
    ws: wsVersion,
    seconds,
  },
  rows,
);
