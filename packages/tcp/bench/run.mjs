// Side-by-side benchmark of @net/tcp against hand-written code on raw node:net, in one process.
// Runs are interleaved (anchor, ours, anchor, ours, …) because the machine is shared and noisy;
// the reported ratio is the median of the per-round ratios.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import os from 'node:os';
import { connect, createServer, lengthPrefixed } from '../dist/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const SMALL_COUNT = Number(process.env.SMALL_COUNT ?? 300_000);
const LARGE_COUNT = Number(process.env.LARGE_COUNT ?? 4_096); // 256 MiB of 64 KiB frames
const HOST = '127.0.0.1';

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------------------------------------
// Anchors: what a careful developer writes by hand on node:net.

/** Minimal length-prefix decoder: concat the leftover only when a frame spans chunks. */
function rawFrameServer(onFrame) {
  return net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending = null;
    socket.on('data', (chunk) => {
      const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      let pos = 0;
      while (buf.length - pos >= 4) {
        const len = buf.readUInt32BE(pos);
        if (buf.length - pos - 4 < len) break;
        onFrame(buf.subarray(pos + 4, pos + 4 + len));
        pos += 4 + len;
      }
      pending = pos === buf.length ? null : buf.subarray(pos);
    });
  });
}

async function rawFrameClientSend(port, payload, count) {
  const socket = net.connect({ port, host: HOST });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  for (let i = 0; i < count; i++) {
    const frame = Buffer.allocUnsafe(4 + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    payload.copy(frame, 4);
    if (!socket.write(frame)) await once(socket, 'drain');
  }
  return socket;
}

/** 64-byte messages through the hand-written decoder. */
async function anchorSmall() {
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = rawFrameServer(() => {
    if (++received === SMALL_COUNT) done();
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const start = process.hrtime.bigint();
  const socket = await rawFrameClientSend(server.address().port, Buffer.alloc(64, 1), SMALL_COUNT);
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return SMALL_COUNT / seconds;
}

/** 64 KiB chunks through a raw pipe: no framing at all. */
async function anchorLarge() {
  const total = LARGE_COUNT * 65_536;
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = net.createServer((socket) => {
    socket.on('data', (chunk) => {
      received += chunk.length;
      if (received === total) done();
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const payload = Buffer.alloc(65_536, 2);
  const start = process.hrtime.bigint();
  const socket = net.connect({ port: server.address().port, host: HOST });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  for (let i = 0; i < LARGE_COUNT; i++) if (!socket.write(payload)) await once(socket, 'drain');
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return total / seconds / 1e6;
}

/** Informational: 64 KiB frames through the same hand-written decoder (it must reassemble too). */
async function anchorLargeFramed() {
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = rawFrameServer(() => {
    if (++received === LARGE_COUNT) done();
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const start = process.hrtime.bigint();
  const socket = net.connect({ port: server.address().port, host: HOST });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const payload = Buffer.alloc(65_536, 2);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  for (let i = 0; i < LARGE_COUNT; i++) {
    socket.cork();
    socket.write(header);
    const ok = socket.write(payload);
    socket.uncork();
    if (!ok) await once(socket, 'drain');
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return (LARGE_COUNT * 65_536) / seconds / 1e6;
}

/**
 * Informational floor for contiguous frames: raw net + the cheapest decoder we could write by hand
 * that still hands out each 64 KiB frame as one Buffer. It allocates the frame from its header and
 * copies every chunk into it on arrival; no error handling, no limits, no events.
 */
function idealFrameServer(onFrame) {
  return net.createServer((socket) => {
    const header = Buffer.alloc(4);
    let headerHave = 0;
    let frame = null;
    let filled = 0;
    socket.on('data', (chunk) => {
      let pos = 0;
      const end = chunk.length;
      while (pos < end) {
        if (frame === null) {
          let len;
          if (headerHave === 0 && end - pos >= 4) {
            len = chunk.readUInt32BE(pos);
            pos += 4;
          } else {
            while (headerHave < 4 && pos < end) header[headerHave++] = chunk[pos++];
            if (headerHave < 4) return;
            headerHave = 0;
            len = header.readUInt32BE(0);
          }
          if (end - pos >= len) {
            onFrame(chunk.subarray(pos, pos + len));
            pos += len;
            continue;
          }
          frame = Buffer.allocUnsafe(len);
          filled = 0;
        }
        const n = Math.min(frame.length - filled, end - pos);
        frame.set(chunk.subarray(pos, pos + n), filled);
        filled += n;
        pos += n;
        if (filled === frame.length) {
          const done = frame;
          frame = null;
          onFrame(done);
        }
      }
    });
  });
}

async function anchorLargeIdeal() {
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = idealFrameServer(() => {
    if (++received === LARGE_COUNT) done();
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const start = process.hrtime.bigint();
  const socket = net.connect({ port: server.address().port, host: HOST });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const payload = Buffer.alloc(65_536, 2);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  for (let i = 0; i < LARGE_COUNT; i++) {
    socket.cork();
    socket.write(header);
    const ok = socket.write(payload);
    socket.uncork();
    if (!ok) await once(socket, 'drain');
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return (LARGE_COUNT * 65_536) / seconds / 1e6;
}

/** Informational: small frames with the writes of each tick corked into one writev. */
async function anchorSmallCorked() {
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = rawFrameServer(() => {
    if (++received === SMALL_COUNT) done();
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const start = process.hrtime.bigint();
  const socket = net.connect({ port: server.address().port, host: HOST });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const payload = Buffer.alloc(64, 1);
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  for (let i = 0; i < SMALL_COUNT; i++) {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    const frame = Buffer.allocUnsafe(4 + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    payload.copy(frame, 4);
    if (!socket.write(frame)) await once(socket, 'drain');
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return SMALL_COUNT / seconds;
}

// ---------------------------------------------------------------------------------------------
// Ours: server + client from @net/tcp, producer respecting backpressure.

async function oursRun(payload, count, unit) {
  let received = 0;
  let bytes = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = createServer({ codec: lengthPrefixed(), idleTimeout: 0 }, (conn) => {
    conn.on('message', (frame) => {
      bytes += frame.length;
      if (++received === count) done();
    });
  });
  const { port } = await server.listen({ host: HOST });
  const start = process.hrtime.bigint();
  const client = await connect({ port, host: HOST, codec: lengthPrefixed() });
  for (let i = 0; i < count; i++) if (!client.write(payload)) await client.drained();
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  client.destroy();
  await server.close({ deadline: 0 });
  return unit === 'msgs' ? count / seconds : bytes / seconds / 1e6;
}

const oursSmall = () => oursRun(Buffer.alloc(64, 1), SMALL_COUNT, 'msgs');
const oursLarge = () => oursRun(Buffer.alloc(65_536, 2), LARGE_COUNT, 'MB');

/** Runs `fn` and also returns its rate per CPU-second (user+sys), which other tenants disturb less. */
async function measure(fn, work) {
  const cpu = process.cpuUsage();
  const rate = await fn();
  const used = process.cpuUsage(cpu);
  return { rate, cpuRate: work / ((used.user + used.system) / 1e6) };
}

async function compare(name, unit, anchor, ours, target, work, labels = ['anchor', '@net']) {
  await anchor(); // warm-up, discarded
  await ours();
  const a = [];
  const b = [];
  const ratios = [];
  const cpuRatios = [];
  for (let i = 0; i < ROUNDS; i++) {
    const x = await measure(anchor, work);
    const y = await measure(ours, work);
    a.push(x.rate);
    b.push(y.rate);
    ratios.push(y.rate / x.rate);
    cpuRatios.push(y.cpuRate / x.cpuRate);
  }
  const fmt = (v) => (unit === 'msgs/s' ? Math.round(v).toLocaleString('en-US') : v.toFixed(0));
  const ratio = median(ratios);
  console.log(`\n${name}`);
  console.log(`  ${labels[0].padEnd(7)} median ${fmt(median(a))} ${unit}   runs: ${a.map(fmt).join(', ')}`);
  console.log(`  ${labels[1].padEnd(7)} median ${fmt(median(b))} ${unit}   runs: ${b.map(fmt).join(', ')}`);
  console.log(
    `  ratio   median ${ratio.toFixed(2)}x (target >= ${target}x) ${ratio >= target ? 'OK' : 'BELOW TARGET'}`,
  );
  console.log(
    `  per CPU-second (less sensitive to other tenants): ratio median ${median(cpuRatios).toFixed(2)}x`,
  );
  return ratio;
}

console.log(
  `@net/tcp bench: node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(`rounds ${ROUNDS}, ${SMALL_COUNT} small messages, ${LARGE_COUNT} x 64 KiB frames per run`);
const started = Date.now();
const only = process.env.ONLY;
if (only !== 'large')
  await compare(
    '(a) 64-byte length-prefixed messages, client -> server (anchor: raw net + hand-written decoder)',
    'msgs/s',
    anchorSmall,
    oursSmall,
    0.95,
    SMALL_COUNT,
  );
if (only !== 'small')
  await compare(
    '(b) 64 KiB frames, client -> server (anchor: raw net pipe, no framing)',
    'MB/s',
    anchorLarge,
    oursLarge,
    0.9,
    (LARGE_COUNT * 65_536) / 1e6,
  );
if (only === undefined || only === 'extra') {
  console.log('\nInformational comparisons against stronger hand-written anchors (no target):');
  await compare(
    "(a') 64-byte messages vs raw net + decoder + cork/uncork per tick",
    'msgs/s',
    anchorSmallCorked,
    oursSmall,
    0,
    SMALL_COUNT,
  );
  await compare(
    "(b') 64 KiB frames vs raw net + the same hand-written length-prefix decoder",
    'MB/s',
    anchorLargeFramed,
    oursLarge,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
  );
  await compare(
    "(b'') floor: raw net pipe vs the cheapest hand-written decoder that yields contiguous 64 KiB frames",
    'MB/s',
    anchorLarge,
    anchorLargeIdeal,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['pipe', 'floor'],
  );
  await compare(
    "(b''') 64 KiB frames vs that cheapest contiguous-frame decoder",
    'MB/s',
    anchorLargeIdeal,
    oursLarge,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['floor', '@net'],
  );
}
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
