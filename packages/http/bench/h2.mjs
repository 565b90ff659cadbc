// HTTP/2 throughput: @net/http (h2c) against a raw node:http2 server and Fastify 5 with
// `http2: true`, the same JSON handler in each, loaded with h2load (Debian `nghttp2-client`).
// Part of `pnpm --filter @net/http bench` (bench/run.mjs imports measureH2 and writes its rows
// into bench/results.json with the HTTP/1.1 rows, so `pnpm figures` renders them in the README).
// Each server runs in its own child process pinned to the server core; h2load runs pinned to the
// load core. Servers are started once and warmed up; each round measures every server in an order
// rotated per round. Reported: requests/s (h2load) and server CPU µs per request.
//
// `node bench/h2.mjs` (or `pnpm --filter @net/http bench:h2`) runs only this part and prints it;
// it writes nothing (a results.json run must hold every row for the README tables).
//   BENCH_ROUNDS (5), BENCH_H2_REQUESTS per measurement (200000), BENCH_H2_CLIENTS (50),
//   BENCH_H2_STREAMS concurrent streams per client (10), BENCH_SMOKE=1 for tiny counts.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http2 from 'node:http2';
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
} from '../../../scripts/bench/lib.mjs';

const self = fileURLToPath(import.meta.url);
const payload = () => ({ hello: 'world' });
const LABELS = {
  'net-h2': '@net/http (h2c)',
  'raw-h2': 'node:http2 (h2c)',
  'fastify-h2': 'Fastify 5 (http2: true, h2c)',
};

async function serve(kind) {
  let server;
  if (kind === 'raw-h2') {
    server = http2.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(payload()));
    });
  } else if (kind === 'net-h2') {
    const { createServer } = await import('../dist/index.js');
    const app = createServer({ http2: 'h2c' });
    app.get('/', payload);
    server = app.node;
  } else if (kind === 'fastify-h2') {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false, http2: true });
    app.get('/', async () => payload());
    await app.ready();
    server = app.server;
  } else throw new Error(`unknown server kind ${kind}`);
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`),
  );
  // CPU time on request, as in server.mjs: steadier than req/s when h2load is the bottleneck.
  process.on('message', (msg) => {
    if (msg === 'cpu') process.send(process.cpuUsage());
  });
  process.on('SIGTERM', () => process.exit(0));
}

function start(kind, plan) {
  const child = spawnOn(plan.server, process.execPath, [self, 'serve', kind], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 15_000);
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      if (!buffered.includes('\n')) return;
      clearTimeout(timer);
      resolve({ child, port: JSON.parse(buffered.split('\n')[0]).port });
    });
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
}

async function cpuOf(child) {
  const reply = once(child, 'message');
  child.send('cpu');
  const [usage] = await reply;
  return usage.user + usage.system;
}

/** Whether h2load is on PATH. */
export function haveH2load() {
  return new Promise((resolve) => execFile('h2load', ['--version'], (err) => resolve(!err)));
}

/** One h2load run (h2c, prior knowledge): { rps, requests }. Throws on any failed request. */
function h2load(port, requests, settings, plan) {
  const args = [
    '-n',
    String(requests),
    '-c',
    String(settings.clients),
    '-m',
    String(settings.streams),
    '-t',
    '1',
    `http://127.0.0.1:${port}/`,
  ];
  const bin = plan.pinned ? plan.taskset : 'h2load';
  const argv = plan.pinned ? ['-c', String(plan.load), 'h2load', ...args] : args;
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (err, out) => {
      if (err) return reject(new Error(`h2load failed: ${err.message}\n${out ?? ''}`));
      const rate = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
      const done =
        /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
          out,
        );
      const status = /status codes: (\d+) 2xx/.exec(out);
      if (rate === null || done === null) return reject(new Error(`unexpected h2load output:\n${out}`));
      if (Number(done[4]) > 0 || Number(done[5]) > 0 || Number(status?.[1] ?? 0) !== requests) {
        return reject(new Error(`h2load reported failures:\n${out}`));
      }
      resolve({ rps: Number(rate[1]), requests });
    });
  });
}

/** The h2 settings from the environment (tiny counts for a smoke run). */
export function h2Settings(env = process.env) {
  return {
    rounds: Number(env.BENCH_ROUNDS ?? (SMOKE ? 1 : 5)),
    requests: Number(env.BENCH_H2_REQUESTS ?? (SMOKE ? 2_000 : 200_000)),
    clients: Number(env.BENCH_H2_CLIENTS ?? (SMOKE ? 10 : 50)),
    streams: Number(env.BENCH_H2_STREAMS ?? 10),
  };
}

/**
 * Runs the h2 comparison and returns its two rows (requests/s, server CPU per request) in the
 * shape of scripts/bench/lib.mjs `row()`, ready for writeResults().
 */
export async function measureH2(plan = pinPlan(), settings = h2Settings()) {
  const kinds = ['net-h2', 'raw-h2', 'fastify-h2'];
  const servers = {};
  const rps = Object.fromEntries(kinds.map((k) => [k, []]));
  const cpu = Object.fromEntries(kinds.map((k) => [k, []]));
  try {
    for (const kind of kinds) servers[kind] = await start(kind, plan);
    const warmup = Math.max(100, Math.floor(settings.requests / 5));
    for (const kind of kinds) await h2load(servers[kind].port, warmup, settings, plan);
    for (let round = 0; round < settings.rounds; round++) {
      for (const kind of rotate(kinds, round)) {
        const before = await cpuOf(servers[kind].child);
        const result = await h2load(servers[kind].port, settings.requests, settings, plan);
        const spent = (await cpuOf(servers[kind].child)) - before;
        rps[kind].push(result.rps);
        cpu[kind].push(spent / result.requests);
      }
    }
  } finally {
    for (const { child } of Object.values(servers)) {
      child.kill('SIGTERM');
      await once(child, 'exit').catch(() => {});
    }
  }
  const title = `HTTP/2 (h2c) hello JSON, h2load ${settings.clients} clients × ${settings.streams} streams`;
  const impls = (set) => Object.fromEntries(kinds.map((k) => [k, { label: LABELS[k], values: set[k] }]));
  return [
    row({
      id: 'h2-rps',
      title,
      metric: 'requests/s',
      unit: 'req/s',
      headline: true,
      impls: impls(rps),
      comparisons: [
        { ours: 'net-h2', anchor: 'raw-h2', target: '>= 0.97' },
        { ours: 'net-h2', anchor: 'fastify-h2', target: '>= 1.1' },
      ],
    }),
    row({
      id: 'h2-cpu',
      title,
      metric: 'server CPU per request',
      unit: 'µs',
      better: 'lower',
      impls: impls(cpu),
      comparisons: [
        { ours: 'net-h2', anchor: 'raw-h2' },
        { ours: 'net-h2', anchor: 'fastify-h2' },
      ],
    }),
  ];
}

if (process.argv[2] === 'serve') await serve(process.argv[3]);
else if (process.argv[1] === self) {
  const plan = pinPlan();
  const facts = machine(fileURLToPath(new URL('.', import.meta.url)), pinSelfAsLoad(plan));
  console.log(header('@net/http h2', facts));
  if (!(await haveH2load())) {
    console.error('h2load not found: install nghttp2-client');
    process.exit(1);
  }
  const settings = h2Settings();
  console.log(
    `h2load -c${settings.clients} -m${settings.streams} -t1, ${settings.rounds} rounds x ${settings.requests} requests`,
  );
  for (const r of await measureH2(plan, settings)) printRow(r);
  console.log('\n(printed only: `pnpm --filter @net/http bench` records these rows in bench/results.json)');
}
