// Throughput benchmark: @net/http against raw node:http and Fastify 5, with autocannon
// (100 connections, pipelining 10). Each server runs in its own child process. Runs are
// started once and warmed up, then measured interleaved (A, B, C, B, C, A, ...); the median of
// the per-round ratios is reported,
// because the machine is shared and absolute numbers drift.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { routeTable } from './server.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION = Number(process.env.BENCH_DURATION ?? 2.5);
const WARMUP = 1;
const serverScript = fileURLToPath(new URL('./server.mjs', import.meta.url));

async function startServer(kind) {
  const child = spawn(process.execPath, [serverScript, kind], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let buffered = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 15_000);
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(line).port);
      }
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { child, port };
}

/** Server process CPU time (user + system) in microseconds. */
async function cpuOf(child) {
  const reply = once(child, 'message');
  child.send('cpu');
  const [usage] = await reply;
  return usage.user + usage.system;
}

function load(port, requests, duration) {
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 100,
    pipelining: 10,
    duration,
    requests,
  });
}

/** Starts every server once, warms each up, then measures them in rotating order each round. */
async function measureAll(kinds, requests) {
  const servers = {};
  try {
    for (const kind of kinds) servers[kind] = await startServer(kind);
    for (const kind of kinds) await load(servers[kind].port, requests, WARMUP);
    const results = Object.fromEntries(kinds.map((k) => [k, []]));
    const cpu = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so no server always runs first (or last).
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
      for (const kind of order) {
        const before = await cpuOf(servers[kind].child);
        const result = await load(servers[kind].port, requests, DURATION);
        const spent = (await cpuOf(servers[kind].child)) - before;
        if (result.non2xx > 0 || result.errors > 0) {
          throw new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`);
        }
        results[kind].push(result.requests.average);
        cpu[kind].push(spent / result.requests.total);
      }
    }
    return { results, cpu };
  } finally {
    for (const { child } of Object.values(servers)) {
      child.kill('SIGTERM');
      await once(child, 'exit').catch(() => {});
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function suite(title, kinds, requests) {
  const { results, cpu } = await measureAll(kinds, requests);
  console.log(`\n${title}`);
  for (const kind of kinds) {
    console.log(
      `  ${kind.padEnd(16)} median ${fmt(median(results[kind]))} req/s, ${median(cpu[kind]).toFixed(2)} µs CPU/req` +
        `  runs: ${results[kind].map(fmt).join(', ')} req/s; ${cpu[kind].map((c) => c.toFixed(2)).join(', ')} µs`,
    );
  }
  return { results, cpu };
}

const started = Date.now();
console.log(
  `@net/http bench: ${ROUNDS} rounds x ${DURATION}s (+${WARMUP}s warm-up), -c 100 -p 10, node ${process.version}, ${os.cpus().length}x ${os.cpus()[0]?.model}`,
);

const hello = await suite(
  'hello-world JSON (GET /)',
  (process.env.BENCH_HELLO ?? 'net,raw,fastify').split(','),
  [{ method: 'GET', path: '/' }],
);
// Throughput ratio: ours / theirs. CPU ratio: theirs / ours (so > 1 means we are cheaper).
const ratio = (set, a, b) => median(set.results[a].map((v, i) => v / set.results[b][i]));
const cpuRatio = (set, a, b) => median(set.cpu[a].map((v, i) => set.cpu[b][i] / v));
const vsRaw = ratio(hello, 'net', 'raw');
if (process.env.BENCH_HELLO) {
  console.log(
    `\nnet vs raw: ${vsRaw.toFixed(3)}x req/s, ${cpuRatio(hello, 'net', 'raw').toFixed(3)}x CPU/req`,
  );
  process.exit(0);
}
const vsFastify = ratio(hello, 'net', 'fastify');

const paths = routeTable().map((r) => ({ method: 'GET', path: r.replace(':id', '42') }));
const routes = await suite(
  '50-route table (every route hit in turn)',
  ['net-routes', 'fastify-routes'],
  paths,
);
const routesVsFastify = ratio(routes, 'net-routes', 'fastify-routes');

console.log('\nratios (median of per-round ratios)       req/s    CPU/req');
const line = (label, r, c, target) =>
  console.log(`  ${label.padEnd(36)} ${r.toFixed(3)}x   ${c.toFixed(3)}x   ${target}`);
line('@net/http vs raw node:http', vsRaw, cpuRatio(hello, 'net', 'raw'), '(target >= 0.97)');
line('@net/http vs fastify', vsFastify, cpuRatio(hello, 'net', 'fastify'), '(target >= 1.10)');
line(
  '50 routes: @net/http vs fastify',
  routesVsFastify,
  cpuRatio(routes, 'net-routes', 'fastify-routes'),
  '',
);
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
