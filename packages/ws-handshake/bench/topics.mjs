// Topic publish: one server publishes to N subscribers; ours (`wss.publish`, frame built once)
// against `ws` 8 (the documented `for (const c of wss.clients) c.send(data)` loop).
//   node bench/topics.mjs [--n 10000] [--publishes 50] [--size 256] [--rounds 3] [--deflate]
// Each server runs in its own process; N raw subscribers in this one count frames. Reports,
// per implementation (median over rounds) and as ours / ws:
//   publish call   synchronous time of one publish call on the server (median, µs)
//   delivered      time from the first publish until every subscriber has every message, per publish (ms)
//   cpu/delivery   server CPU (user + system) per delivered message, µs
// Run it on a quiet machine; on a shared one only the ratios mean anything.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: process.env.TOPIC_SUBSCRIBERS ?? '10000' },
    publishes: { type: 'string', default: '50' },
    size: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '3' },
    deflate: { type: 'boolean', default: false },
    // One JSON line with every round's values, for bench/run.mjs (which writes results.json).
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.n);
const PUBLISHES = Number(values.publishes);
const SIZE = Number(values.size);
const ROUNDS = Number(values.rounds);
const here = fileURLToPath(new URL('.', import.meta.url));

function startServer(impl) {
  const args = [`${here}topics-server.mjs`, impl, ...(values.deflate ? ['--deflate'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.findIndex((x) => line.startsWith(x.prefix));
      if (w !== -1) waiters.splice(w, 1)[0].resolve(line.slice(line.indexOf(' ') + 1));
    }
  });
  const expect = (prefix) => new Promise((resolve) => waiters.push({ prefix, resolve }));
  const ready = expect('READY').then(Number);
  return {
    ready,
    command(line, reply) {
      const p = expect(reply);
      child.stdin.write(`${line}\n`);
      return p;
    },
    stop() {
      child.kill('SIGINT');
      return new Promise((r) => child.once('exit', r));
    },
  };
}

/** Counts complete frames (header parsing only; payloads are skipped, never copied). */
function frameCounter(onFrame) {
  let skip = 0;
  let partial = null;
  return (chunk) => {
    if (partial !== null) {
      chunk = Buffer.concat([partial, chunk]);
      partial = null;
    }
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const take = Math.min(skip, chunk.length - i);
        skip -= take;
        i += take;
        if (skip === 0) onFrame();
        continue;
      }
      const avail = chunk.length - i;
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
      if (len === 0) onFrame();
      else skip = len;
    }
    if (i < chunk.length) partial = chunk.subarray(i);
  };
}

function subscribe(port, onFrame) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', reject);
    const ext = values.deflate
      ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n'
      : '';
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${ext}\r\n`,
    );
    let acc = Buffer.alloc(0);
    const onData = (d) => {
      acc = Buffer.concat([acc, d]);
      const idx = acc.indexOf('\r\n\r\n');
      if (idx === -1) return;
      socket.removeListener('data', onData);
      if (!acc.subarray(0, 12).toString().includes('101')) return reject(new Error('handshake failed'));
      const count = frameCounter(onFrame);
      socket.on('data', count);
      if (acc.length > idx + 4) count(acc.subarray(idx + 4));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

async function round(impl) {
  const server = startServer(impl);
  const port = await server.ready;
  let received = 0;
  const sockets = [];
  for (let i = 0; i < N; i += 200) {
    const batch = Array.from({ length: Math.min(200, N - i) }, () =>
      subscribe(port, () => {
        received++;
      }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, 200)); // every subscription registered
  const expected = N * PUBLISHES;
  const start = performance.now();
  const published = server.command(`PUB ${PUBLISHES} ${SIZE}`, 'PUBLISHED').then(JSON.parse);
  const deadline = Date.now() + 120_000;
  while (received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  const elapsed = performance.now() - start;
  const times = await published;
  const cpu = Number(await server.command('CPU', 'CPU'));
  for (const s of sockets) s.destroy();
  await server.stop();
  if (received < expected) throw new Error(`${impl}: ${received} of ${expected} deliveries in 120 s`);
  times.sort((a, b) => a - b);
  return {
    call: times[times.length >> 1],
    perPublish: elapsed / PUBLISHES,
    cpuPerDelivery: cpu / expected,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const results = { ws: [], net: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const impl of ['ws', 'net']) results[impl].push(await round(impl));
}
if (values.json) {
  console.log(`TOPICS_JSON ${JSON.stringify({ n: N, publishes: PUBLISHES, size: SIZE, results })}`);
  process.exit(0);
}
const row = (label, key, digits) => {
  const w = median(results.ws.map((x) => x[key]));
  const n = median(results.net.map((x) => x[key]));
  console.log(`| ${label} | ${w.toFixed(digits)} | ${n.toFixed(digits)} | ${(n / w).toFixed(2)}× |`);
};
console.log(
  `\nTopic publish, ${N} subscribers, ${PUBLISHES} publishes of ${SIZE} B${values.deflate ? ' (permessage-deflate, no context takeover)' : ''}, median of ${ROUNDS} rounds\n`,
);
console.log('| Measure | ws | @net/ws-handshake | ours / ws |');
console.log('| --- | --- | --- | --- |');
row('publish call (µs)', 'call', 0);
row('delivered to all, per publish (ms)', 'perPublish', 2);
row('server CPU per delivery (µs)', 'cpuPerDelivery', 3);
