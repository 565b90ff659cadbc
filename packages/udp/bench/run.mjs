// Benchmark: @net/udp against raw node:dgram in the same run, interleaved (A, B, A, B, ...) so the
// noise of a shared machine hits both sides alike. Prints medians and the ours/raw ratio.
//
// 1. Datagrams/s: 512-byte datagrams sent over 127.0.0.1 and counted on the RECEIVE side. Sender
//    and receiver live in one process and use the same layer (both raw, or both ours); the send
//    loop is identical (batches of BATCH, then setImmediate so receives get their turn). Anchors:
//    raw send with a callback (it learns about errors, like our send() and post()) and raw send
//    without one (fire-and-forget, errors silently lost: the fastest dgram can go).
// 2. Round trips/s: our createRequester/serve against a minimal raw dgram ping-pong (4-byte id
//    echo), with 1 and 32 requests in flight; then against a hand-written dgram request/response
//    with an id header, a pending Map, a promise and a timeout per request (the fairer anchor).
//    BENCH_ONLY=<substring> runs only the rows whose name contains it.
//    Results: bench/results.json (BENCH_SMOKE=1 for a smoke run).
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { header, machine, row as makeRow, SMOKE, writeResults } from '../../../scripts/bench/lib.mjs';
import { createRequester, createSocket, serve } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 7));
const TRIAL_MS = Number(process.env.BENCH_TRIAL_MS ?? (SMOKE ? 100 : 600));
const SIZE = 512;
const BATCH = 32;
const payload = Buffer.alloc(SIZE, 0x61);
const tick = () => new Promise((resolve) => setImmediate(resolve));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---- datagram throughput -------------------------------------------------------------------

async function rawThroughput(withCallback) {
  const rx = dgram.createSocket('udp4');
  const tx = dgram.createSocket('udp4');
  let received = 0;
  rx.on('message', () => received++);
  await new Promise((r) => rx.bind(0, '127.0.0.1', r));
  await new Promise((r) => tx.bind(0, '127.0.0.1', r));
  const port = rx.address().port;
  const rate = await blast(
    () => received,
    withCallback
      ? (done) => {
          for (let i = 0; i < BATCH; i++) tx.send(payload, port, '127.0.0.1', done);
        }
      : () => {
          for (let i = 0; i < BATCH; i++) tx.send(payload, port, '127.0.0.1');
        },
    withCallback,
  );
  await Promise.all([new Promise((r) => rx.close(r)), new Promise((r) => tx.close(r))]);
  return rate;
}

async function oursThroughput(mode) {
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  let received = 0;
  await rx.bind(0, '127.0.0.1');
  await tx.bind(0, '127.0.0.1');
  let loop;
  if (mode === 'iterate') {
    loop = (async () => {
      for await (const _ of rx) received++;
    })();
  } else rx.on('message', () => received++);
  const port = rx.address().port;
  const rate = await blast(
    () => received,
    mode === 'send'
      ? (done) => {
          for (let i = 0; i < BATCH; i++) tx.send(payload, port, '127.0.0.1').then(done, done);
        }
      : () => {
          for (let i = 0; i < BATCH; i++) tx.post(payload, port, '127.0.0.1');
        },
    mode === 'send',
  );
  await Promise.all([rx.close(), tx.close()]);
  await loop;
  return rate;
}

/** Sends batches until TRIAL_MS elapsed; returns datagrams RECEIVED per second. */
async function blast(count, sendBatch, waitForCompletion) {
  let outstanding = 0;
  let resume;
  const done = () => {
    if (--outstanding === 0 && resume) resume();
  };
  const start = performance.now();
  const cpu = process.cpuUsage();
  const before = count();
  while (performance.now() - start < TRIAL_MS) {
    if (waitForCompletion) {
      outstanding = BATCH;
      const flushed = new Promise((r) => {
        resume = r;
      });
      sendBatch(done);
      await flushed;
    } else sendBatch();
    await tick();
  }
  // Let datagrams already in the kernel buffer arrive, then count.
  await new Promise((r) => setTimeout(r, 50));
  return rates(count() - before, start, cpu);
}

/** Events per wall-clock second and per CPU second (user + system) of this process. */
function rates(events, start, cpu) {
  const used = process.cpuUsage(cpu);
  return {
    wall: (events * 1000) / (performance.now() - start),
    cpu: (events * 1e6) / Math.max(1, used.user + used.system),
  };
}

// ---- request/response round trips ------------------------------------------------------------

async function rawPingPong(inFlight) {
  const server = dgram.createSocket('udp4');
  const client = dgram.createSocket('udp4');
  server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
  await new Promise((r) => server.bind(0, '127.0.0.1', r));
  await new Promise((r) => client.bind(0, '127.0.0.1', r));
  const port = server.address().port;
  let trips = 0;
  let running = true;
  const message = Buffer.alloc(4 + SIZE);
  client.on('message', (msg) => {
    trips++;
    if (running) client.send(msg, port, '127.0.0.1');
  });
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < inFlight; i++) {
    const m = Buffer.from(message);
    m.writeUInt32BE(i, 0);
    client.send(m, port, '127.0.0.1');
  }
  await new Promise((r) => setTimeout(r, TRIAL_MS));
  running = false;
  const rate = rates(trips, start, cpu);
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => client.close(r))]);
  return rate;
}

// A fairer anchor for request/response: what a careful hand-written dgram client does. An 8-byte
// header (magic, version, flags, uint32 id) in front of the payload, a Map of pending ids, one
// setTimeout per request (cleared on the reply) and a promise per request; the server checks the
// header, flips the reply flag and echoes. No retransmission, no reply cache, no peer check.
async function rawIdRequests(inFlight) {
  const server = dgram.createSocket('udp4');
  const client = dgram.createSocket('udp4');
  server.on('message', (msg, rinfo) => {
    if (msg.length < 8 || msg[0] !== 0xae || msg[1] !== 0x55 || (msg[3] & 1) !== 0) return;
    const out = Buffer.allocUnsafe(msg.length);
    msg.copy(out);
    out[3] = 1;
    server.send(out, rinfo.port, rinfo.address);
  });
  await new Promise((r) => server.bind(0, '127.0.0.1', r));
  await new Promise((r) => client.bind(0, '127.0.0.1', r));
  const port = server.address().port;
  const pending = new Map();
  let nextId = 1;
  client.on('message', (msg) => {
    if (msg.length < 8 || msg[0] !== 0xae || msg[1] !== 0x55 || (msg[3] & 1) === 0) return;
    const entry = pending.get(msg.readUInt32BE(4));
    if (entry === undefined) return;
    pending.delete(msg.readUInt32BE(4));
    clearTimeout(entry.timer);
    entry.resolve(msg.subarray(8));
  });
  const request = (data) =>
    new Promise((resolve, reject) => {
      const id = nextId;
      nextId = (nextId + 1) >>> 0;
      const frame = Buffer.allocUnsafe(8 + data.length);
      frame[0] = 0xae;
      frame[1] = 0x55;
      frame[2] = 1;
      frame[3] = 0;
      frame.writeUInt32BE(id, 4);
      data.copy(frame, 8);
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('timeout'));
      }, 5000);
      pending.set(id, { resolve, timer });
      client.send(frame, port, '127.0.0.1', (err) => {
        if (err && pending.delete(id)) {
          clearTimeout(timer);
          reject(err);
        }
      });
    });
  let trips = 0;
  let running = true;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const loops = Array.from({ length: inFlight }, async () => {
    while (running) {
      await request(payload);
      trips++;
    }
  });
  await new Promise((r) => setTimeout(r, TRIAL_MS));
  running = false;
  const rate = rates(trips, start, cpu);
  await Promise.all(loops);
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => client.close(r))]);
  return rate;
}

async function oursRequests(inFlight) {
  const server = createSocket('udp4');
  const client = createSocket('udp4');
  await server.bind(0, '127.0.0.1');
  await client.bind(0, '127.0.0.1');
  const responder = serve(server, (data) => data);
  const requester = createRequester(client, {
    defaults: { port: server.address().port, host: '127.0.0.1', timeout: 5000 },
  });
  let trips = 0;
  let running = true;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const loops = Array.from({ length: inFlight }, async () => {
    while (running) {
      await requester.request(payload);
      trips++;
    }
  });
  await new Promise((r) => setTimeout(r, TRIAL_MS));
  running = false;
  const rate = rates(trips, start, cpu);
  await Promise.all(loops);
  responder.close();
  await Promise.all([server.close(), client.close()]);
  return rate;
}

// ---- driver ------------------------------------------------------------------------------------

const ONLY = process.env.BENCH_ONLY;

const results = [];
const LABELS = {
  'send(cb)': ['dgram send() with callback', '@net/udp'],
  'no cb': ['dgram send() without callback', '@net/udp'],
  'bare echo': ['dgram bare echo (no ids, timers, promises)', '@net/udp createRequester + serve'],
  'id+timer': ['hand-written dgram id + timeout request layer', '@net/udp createRequester + serve'],
};
async function compare(name, raw, ours, id, labelKey, headline = false) {
  if (ONLY !== undefined && !name.includes(ONLY)) return undefined;
  await raw();
  await ours(); // warm-up, not counted
  const rawRates = [];
  const ourRates = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which side goes first so drift on a shared machine does not favour either.
    if (i % 2 === 0) {
      rawRates.push(await raw());
      ourRates.push(await ours());
    } else {
      ourRates.push(await ours());
      rawRates.push(await raw());
    }
  }
  const pick = (key) => ({
    raw: Math.round(median(rawRates.map((r) => r[key]))),
    ours: Math.round(median(ourRates.map((r) => r[key]))),
    ratio: median(ourRates.map((r, i) => r[key] / rawRates[i][key])),
  });
  const row = { name, wall: pick('wall'), cpu: pick('cpu') };
  const [anchorLabel, oursLabel] = LABELS[labelKey];
  const impls = (key) => ({
    ours: { label: oursLabel, values: ourRates.map((r) => r[key]) },
    raw: { label: anchorLabel, values: rawRates.map((r) => r[key]) },
  });
  const unit = name.includes('round trips') ? 'round trips/s' : 'datagrams/s';
  const cmp = [{ ours: 'ours', anchor: 'raw', ...(headline ? { target: '>= 0.95' } : {}) }];
  results.push(
    makeRow({
      id,
      title: name,
      metric: 'per wall-clock second',
      unit,
      headline,
      impls: impls('wall'),
      comparisons: cmp,
    }),
    makeRow({
      id: `${id}-cpu`,
      title: name,
      metric: 'per CPU-second of the process',
      unit: `${unit} per CPU-s`,
      impls: impls('cpu'),
      comparisons: [{ ours: 'ours', anchor: 'raw' }],
    }),
  );
  const fmt = (n) => String(n).padStart(7);
  console.log(
    `${name.padEnd(46)} ${fmt(row.wall.raw)} ${fmt(row.wall.ours)}  ${row.wall.ratio.toFixed(3)}   ` +
      `${fmt(row.cpu.raw)} ${fmt(row.cpu.ours)}  ${row.cpu.ratio.toFixed(3)}`,
  );
  return row;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const facts = machine(here, 'not pinned: sender and receiver share one process and one event loop');
console.log(header('@net/udp', facts));
console.log(`${ROUNDS} interleaved rounds of ${TRIAL_MS} ms; ratio = median of per-round ours/raw`);
console.log('per wall second is what you see; per CPU second (user+sys of this process) is robust to');
console.log('other processes stealing the cores, so it is the fairer ratio on a shared machine.\n');
console.log(`${''.padEnd(46)} ${'per wall second'.padEnd(25)}   per CPU second`);
console.log(
  `${''.padEnd(46)} ${'raw'.padStart(7)} ${'ours'.padStart(7)}  ratio   ${'raw'.padStart(7)} ${'ours'.padStart(7)}  ratio`,
);
const started = performance.now();
const rows = [];
rows.push(
  await compare(
    '512 B datagrams/s: send() vs send(cb)',
    () => rawThroughput(true),
    () => oursThroughput('send'),
    'send-vs-sendcb',
    'send(cb)',
    true,
  ),
);
rows.push(
  await compare(
    '512 B datagrams/s: post() vs send(cb)',
    () => rawThroughput(true),
    () => oursThroughput('post'),
    'post-vs-sendcb',
    'send(cb)',
  ),
);
rows.push(
  await compare(
    '512 B datagrams/s: post() vs send() no cb',
    () => rawThroughput(false),
    () => oursThroughput('post'),
    'post-vs-nocb',
    'no cb',
  ),
);
rows.push(
  await compare(
    '512 B datagrams/s: for-await rx, post() tx',
    () => rawThroughput(false),
    () => oursThroughput('iterate'),
    'iterate-vs-nocb',
    'no cb',
  ),
);
rows.push(
  await compare(
    'round trips/s, 1 in flight',
    () => rawPingPong(1),
    () => oursRequests(1),
    'rtt1-echo',
    'bare echo',
  ),
);
rows.push(
  await compare(
    'round trips/s, 32 in flight',
    () => rawPingPong(32),
    () => oursRequests(32),
    'rtt32-echo',
    'bare echo',
  ),
);
rows.push(
  await compare(
    'round trips/s, 1 in flight, id+timer anchor',
    () => rawIdRequests(1),
    () => oursRequests(1),
    'rtt1-id',
    'id+timer',
  ),
);
rows.push(
  await compare(
    'round trips/s, 32 in flight, id+timer anchor',
    () => rawIdRequests(32),
    () => oursRequests(32),
    'rtt32-id',
    'id+timer',
  ),
);
console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
if (process.env.BENCH_JSON) console.log(JSON.stringify(rows.filter(Boolean)));
writeResults(
  here,
  '@net/udp',
  facts,
  { rounds: ROUNDS, trialMs: TRIAL_MS, datagramBytes: SIZE, batch: BATCH },
  results,
);
