// Benchmark: @net/ws-handshake vs ws 8, servers in a child process, a raw load generator here.
// Runs the two implementations interleaved (ws, net, ws, net, ...) and prints median ratios.
//   node bench/run.mjs [--quick]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const here = fileURLToPath(new URL('.', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const IDLE_ROUNDS = Math.min(ROUNDS, 2);
const DURATION = quick ? 1000 : 1500;
const IDLE_N = Number(process.env.IDLE_CONNECTIONS ?? (quick ? 2000 : 10_000));

function startServer(impl, mode) {
  const prof = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const child = spawn(process.execPath, ['--expose-gc', ...prof, `${here}server.mjs`, impl, mode], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
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
  counting = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, DURATION));
  const elapsed = (performance.now() - start) / 1000;
  counting = false;
  closeAll(clients);
  await server.stop();
  return { msgs: count / elapsed, mbps: (count * payload.length) / elapsed / 1e6 };
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

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function interleave(name, fn, metrics, rounds = ROUNDS) {
  const res = { ws: [], net: [] };
  for (let r = 0; r < rounds; r++) {
    for (const impl of ['ws', 'net']) res[impl].push(await fn(impl));
  }
  const rows = [];
  for (const [key, label, better] of metrics) {
    const ws = median(res.ws.map((x) => x[key]));
    const ours = median(res.net.map((x) => x[key]));
    const ratios = res.net.map((x, i) => x[key] / res.ws[i][key]);
    rows.push({
      scenario: name,
      metric: label,
      ws: ws.toFixed(2),
      net: ours.toFixed(2),
      ratio: `${median(ratios).toFixed(2)}x`,
      goal: better,
    });
  }
  console.table(rows);
  return rows;
}

console.log(
  `@net/ws-handshake vs ws ${(await import('ws/package.json', { with: { type: 'json' } })).default.version}` +
    ` | node ${process.version} | ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'} | load ${os.loadavg()[0].toFixed(2)}`,
);
console.log('ws runs without bufferutil / utf-8-validate (not installed): pure JS masking and UTF-8 checks.');
const started = Date.now();
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
const scenarios = [
  [
    'echo',
    'echo 1 KiB text, 50 conns',
    (impl) => echoRun(impl, Buffer.alloc(1024, 0x61), 1, 50, 4),
    [['msgs', 'msgs/s', '>= 1.25x']],
  ],
  [
    'binary',
    'echo 64 KiB binary, 10 conns',
    (impl) => echoRun(impl, randomBytes(65536), 2, 10, 2),
    [['mbps', 'MB/s', '>= 1.1x']],
  ],
  [
    'broadcast',
    'broadcast 1 -> 1,000',
    (impl) => broadcastRun(impl, 1000, quick ? 20 : 40),
    [
      ['p50', 'p50 ms', 'lower'],
      ['p99', 'p99 ms', '<= 0.8x'],
    ],
  ],
  [
    'idle',
    `idle memory, ${IDLE_N} conns`,
    (impl) => idleRun(impl, IDLE_N),
    [
      ['perConn', 'bytes/conn (heap+external)', '<= 0.8x'],
      ['rssPerConn', 'bytes/conn (RSS)', 'lower'],
    ],
  ],
];
for (const [key, name, fn, metrics] of scenarios) {
  if (only === null || only.includes(key))
    await interleave(name, fn, metrics, key === 'idle' ? IDLE_ROUNDS : ROUNDS);
}
console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
