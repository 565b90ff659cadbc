// Side-by-side benchmark of @net/tcp against hand-written code on raw node:net, in one process
// (server and client share one event loop, so there is no separate load generator to pin).
// Runs are interleaved, alternating which side goes first each round, because the machine is
// shared and noisy; the reported ratio is the median of the per-round ratios.
// Results: bench/results.json. BENCH_ROUNDS (default 9), SMALL_COUNT, LARGE_COUNT,
// ONLY=small|large|extra, BENCH_SMOKE=1 for a smoke run.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { header, machine, printRow, row, SMOKE, writeResults } from '../../../scripts/bench/lib.mjs';
import { connect, createServer, lengthPrefixed } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? process.env.ROUNDS ?? (SMOKE ? 1 : 9));
const SMALL_COUNT = Number(process.env.SMALL_COUNT ?? (SMOKE ? 20_000 : 300_000));
const LARGE_COUNT = Number(process.env.LARGE_COUNT ?? (SMOKE ? 256 : 4_096)); // 256 MiB of 64 KiB frames
const HOST = '127.0.0.1';

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));

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

/**
 * Informational: a raw 64 KiB pipe server -> client, read by the client with 'data' events (a
 * fresh 64 KiB buffer per read) or with `onread` into one reusable buffer of ONREAD_SIZE. Only client
 * sockets take `onread`; its reused buffer is overwritten on the next read, so it cannot feed the
 * zero-copy segments mode (a frame would have to be copied out before returning).
 */
const ONREAD_SIZE = 256 * 1024;
async function pipeToClient(useOnread) {
  const total = LARGE_COUNT * 65_536;
  const payload = Buffer.alloc(65_536, 3);
  const server = net.createServer(async (socket) => {
    socket.setNoDelay(true);
    for (let i = 0; i < LARGE_COUNT; i++) if (!socket.write(payload)) await once(socket, 'drain');
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const count = (n) => {
    received += n;
    if (received === total) done();
  };
  const start = process.hrtime.bigint();
  const socket = net.connect({
    port: server.address().port,
    host: HOST,
    ...(useOnread ? { onread: { buffer: Buffer.allocUnsafe(ONREAD_SIZE), callback: (n) => count(n) } } : {}),
  });
  if (!useOnread) socket.on('data', (chunk) => count(chunk.length));
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  server.close();
  return total / seconds / 1e6;
}
const pipeToClientData = () => pipeToClient(false);
const pipeToClientOnread = () => pipeToClient(true);

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

async function oursRun(payload, count, unit, codec = lengthPrefixed()) {
  let received = 0;
  let bytes = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = createServer({ codec, idleTimeout: 0 }, (conn) => {
    // `frame` is a Buffer, or a Frame (zero-copy segments) with codec `lengthPrefixed({ frames: 'segments' })`.
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
const segmentsCodec = lengthPrefixed({ frames: 'segments' });
const oursLargeSegments = () => oursRun(Buffer.alloc(65_536, 2), LARGE_COUNT, 'MB', segmentsCodec);

/**
 * The same bytes as the large rows (LARGE_COUNT x 64 KiB), as frames of 64 MiB sent with
 * sendStream() (64 KiB pieces of one reused buffer) and read on the server as FrameStreams.
 */
const STREAM_FRAME = 64 * 1024 * 1024;
async function oursStreamed() {
  const total = LARGE_COUNT * 65_536;
  const frames = Math.max(1, Math.round(total / STREAM_FRAME));
  const frameBytes = total / frames;
  let bytes = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const server = createServer(
    { codec: lengthPrefixed({ frames: 'stream' }), idleTimeout: 0 },
    async (conn) => {
      for await (const stream of conn) {
        for await (const chunk of stream) bytes += chunk.length;
        if (bytes === total) done();
      }
    },
  );
  const { port } = await server.listen({ host: HOST });
  const piece = Buffer.alloc(65_536, 2);
  function* payload() {
    for (let sent = 0; sent < frameBytes; sent += piece.length) yield piece;
  }
  const start = process.hrtime.bigint();
  const client = await connect({ port, host: HOST, codec: lengthPrefixed({ frames: 'stream' }) });
  for (let i = 0; i < frames; i++) await client.sendStream(frameBytes, payload());
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  client.destroy();
  await server.close({ deadline: 0 });
  return bytes / seconds / 1e6;
}

/** Runs `fn` and also returns its rate per CPU-second (user+sys), which other tenants disturb less. */
async function measure(fn, work) {
  const cpu = process.cpuUsage();
  const rate = await fn();
  const used = process.cpuUsage(cpu);
  return { rate, cpuRate: work / ((used.user + used.system) / 1e6) };
}

const rows = [];
async function compare(id, name, unit, anchor, ours, target, work, labels, headline = false) {
  await anchor(); // warm-up, discarded
  await ours();
  const a = [];
  const b = [];
  const aCpu = [];
  const bCpu = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which side goes first so drift on a shared machine favours neither.
    const [x, y] =
      i % 2 === 0
        ? [await measure(anchor, work), await measure(ours, work)]
        : await (async () => {
            const yy = await measure(ours, work);
            return [await measure(anchor, work), yy];
          })();
    a.push(x.rate);
    b.push(y.rate);
    aCpu.push(x.cpuRate);
    bCpu.push(y.cpuRate);
  }
  const impls = (av, bv) => ({
    ours: { label: labels[1], values: bv },
    anchor: { label: labels[0], values: av },
  });
  const cmp = [{ ours: 'ours', anchor: 'anchor', target: target > 0 ? `>= ${target}` : undefined }];
  const wall = row({
    id,
    title: name,
    metric: 'wall-clock rate',
    unit,
    headline,
    impls: impls(a, b),
    comparisons: cmp,
  });
  const cpu = row({
    id: `${id}-cpu`,
    title: name,
    metric: 'rate per CPU-second of the process',
    unit: `${unit} per CPU-s`,
    impls: impls(aCpu, bCpu),
    comparisons: [{ ours: 'ours', anchor: 'anchor' }],
  });
  printRow(wall);
  printRow(cpu);
  rows.push(wall, cpu);
  return wall.comparisons[0].ratio;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const facts = machine(here, 'not pinned: server and client share one process and one event loop');
console.log(header('@net/tcp', facts));
console.log(`rounds ${ROUNDS}, ${SMALL_COUNT} small messages, ${LARGE_COUNT} x 64 KiB frames per run`);
const started = Date.now();
const only = process.env.ONLY;
const NET = '@net/tcp lengthPrefixed()';
const NET_SEGMENTS = "@net/tcp lengthPrefixed({ frames: 'segments' })";
if (only !== 'large') {
  await compare(
    'small-corked',
    '64-byte length-prefixed messages, client -> server',
    'msgs/s',
    anchorSmallCorked,
    oursSmall,
    0.95,
    SMALL_COUNT,
    ['raw net + hand-written decoder, writes corked per tick', NET],
    true,
  );
}
if (only !== 'small') {
  await compare(
    'large-pipe',
    '64 KiB length-prefixed frames, client -> server',
    'MB/s',
    anchorLarge,
    oursLarge,
    0.95,
    (LARGE_COUNT * 65_536) / 1e6,
    ['raw net pipe (no framing)', NET],
    true,
  );
  await compare(
    'large-segments-pipe',
    '64 KiB length-prefixed frames, zero-copy Frame segments, client -> server',
    'MB/s',
    anchorLarge,
    oursLargeSegments,
    0.95,
    (LARGE_COUNT * 65_536) / 1e6,
    ['raw net pipe (no framing)', NET_SEGMENTS],
    true,
  );
  await compare(
    'stream-64mib-pipe',
    '64 MiB frames streamed (sendStream -> FrameStream), client -> server',
    'MB/s',
    anchorLarge,
    oursStreamed,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['raw net pipe (no framing)', "@net/tcp lengthPrefixed({ frames: 'stream' })"],
  );
}
if (only === undefined || only === 'extra') {
  await compare(
    'small-uncorked',
    '64-byte length-prefixed messages, client -> server',
    'msgs/s',
    anchorSmall,
    oursSmall,
    0,
    SMALL_COUNT,
    ['raw net + hand-written decoder, one write per message', NET],
  );
  await compare(
    'large-framed',
    '64 KiB length-prefixed frames, client -> server',
    'MB/s',
    anchorLargeFramed,
    oursLarge,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['raw net + the same hand-written decoder', NET],
  );
  await compare(
    'floor-vs-pipe',
    'floor: cheapest hand-written contiguous-frame decoder vs raw pipe, 64 KiB',
    'MB/s',
    anchorLarge,
    anchorLargeIdeal,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['raw net pipe (no framing)', 'cheapest contiguous-frame decoder'],
  );
  await compare(
    'large-vs-floor',
    '64 KiB length-prefixed frames, client -> server',
    'MB/s',
    anchorLargeIdeal,
    oursLarge,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    ['cheapest contiguous-frame decoder', NET],
  );
  await compare(
    'onread-vs-data',
    'raw 64 KiB pipe server -> client: client reads with onread (reused buffer) vs data events',
    'MB/s',
    pipeToClientData,
    pipeToClientOnread,
    0,
    (LARGE_COUNT * 65_536) / 1e6,
    [
      "raw net client, 'data' events",
      `raw net client, onread into a reused ${ONREAD_SIZE / 1024} KiB buffer`,
    ],
  );
}
const seconds = (Date.now() - started) / 1000;
console.log(`\ntotal ${seconds.toFixed(1)} s`);
writeResults(
  here,
  '@net/tcp',
  facts,
  { rounds: ROUNDS, smallCount: SMALL_COUNT, largeCount: LARGE_COUNT, seconds },
  rows,
);
