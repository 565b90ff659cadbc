// Throughput benchmark: @net/http against raw node:http and Fastify 5, with autocannon
// (100 connections, pipelining 10). Each server runs in its own child process. Runs are
// interleaved (A, B, C, A, B, C, ...) and the median of the per-round ratios is reported,
// because the machine is shared and absolute numbers drift.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { routeTable } from './server.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_DURATION ?? 3);
const WARMUP = 1;
const serverScript = fileURLToPath(new URL('./server.mjs', import.meta.url));

async function startServer(kind) {
  const child = spawn(process.execPath, [serverScript, kind], { stdio: ['ignore', 'pipe', 'inherit'] });
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

function load(port, requests, duration) {
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 100,
    pipelining: 10,
    duration,
    requests,
  });
}

async function measure(kind, requests) {
  const { child, port } = await startServer(kind);
  try {
    await load(port, requests, WARMUP);
    const result = await load(port, requests, DURATION);
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    return result.requests.average;
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit').catch(() => {});
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function suite(title, kinds, requests) {
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so no server always runs first (or last) on a warm machine.
    const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
    for (const kind of order) results[kind].push(await measure(kind, requests));
  }
  console.log(`\n${title}`);
  for (const kind of kinds)
    console.log(
      `  ${kind.padEnd(16)} median ${fmt(median(results[kind]))} req/s  runs: ${results[kind].map(fmt).join(', ')}`,
    );
  return results;
}

const started = Date.now();
console.log(
  `@net/http bench: ${ROUNDS} rounds x ${DURATION}s (+${WARMUP}s warm-up), -c 100 -p 10, node ${process.version}`,
);

const helloKinds = (process.env.BENCH_KINDS ?? 'net,raw,fastify').split(',');
const hello = await suite('hello-world JSON (GET /)', helloKinds, [{ method: 'GET', path: '/' }]);
const perRound = (a, b) => median(hello[a].map((v, i) => v / hello[b][i]));
const vsRaw = perRound('net', 'raw');
const vsFastify = perRound('net', 'fastify');

const paths = routeTable().map((r) => ({ method: 'GET', path: r.replace(':id', '42') }));
const routes = await suite(
  '50-route table (every route hit in turn)',
  ['net-routes', 'fastify-routes'],
  paths,
);
const routesVsFastify = median(routes['net-routes'].map((v, i) => v / routes['fastify-routes'][i]));

console.log('\nratios (median of per-round ratios)');
console.log(`  @net/http / raw node:http   ${vsRaw.toFixed(3)}x   (target >= 0.97)`);
console.log(`  @net/http / fastify         ${vsFastify.toFixed(3)}x   (target >= 1.10)`);
console.log(`  50 routes: @net/http / fastify ${routesVsFastify.toFixed(3)}x`);
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
