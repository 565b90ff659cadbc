// @net/http against raw node:http (writeHead + content-length) and Fastify 5 (logger off), the same
// hello-JSON handler in each. Load: wrk. Each server runs in its own child process, pinned to core
// 0; wrk runs pinned to core 1 (when the machine has two cores and taskset). Every server is started
// once and warmed up; each round measures every server, in an order rotated per round. Reported:
// requests/s (wrk) and server CPU µs per request (process.cpuUsage() of the server child).
// Results: bench/results.json (rendered into the READMEs by `pnpm figures`).
//   BENCH_ROUNDS (default 5), BENCH_DURATION seconds per measurement (default 3),
//   BENCH_ONLY=hello,pipelined,routes,h2, BENCH_SMOKE=1 for a smoke run.
// The HTTP/2 rows (h2load against node:http2 and Fastify with http2: true) come from ./h2.mjs.
// The hello shape also measures @net/http with a response schema (`hello-schema-*` rows).
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { h2Settings, haveH2load, measureH2 } from './h2.mjs';
import { routeTable } from './server.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 5));
const DURATION = Number(process.env.BENCH_DURATION ?? (SMOKE ? 1 : 3));
const WARMUP = SMOKE ? 1 : 2;
const CONNECTIONS = 100;
const ONLY = process.env.BENCH_ONLY?.split(',');
const here = fileURLToPath(new URL('.', import.meta.url));
const plan = pinPlan();
const pinning = pinSelfAsLoad(plan);
const facts = machine(here, pinning);
console.log(header('@net/http', facts));
console.log(`wrk -t1 -c${CONNECTIONS}, ${ROUNDS} rounds x ${DURATION} s (+${WARMUP} s warm-up per server)`);

const scripts = tmpdir();
const pipelineLua = join(scripts, `net-http-bench-pipeline-${process.pid}.lua`);
writeFileSync(
  pipelineLua,
  `init = function(args)\n  local r = {}\n  for i = 1, 10 do r[i] = wrk.format(nil, "/") end\n  req = table.concat(r)\nend\nrequest = function() return req end\n`,
);
const routesLua = join(scripts, `net-http-bench-routes-${process.pid}.lua`);
const paths = routeTable().map((r) => r.replace(':id', '42'));
writeFileSync(
  routesLua,
  `local paths = { ${paths.map((p) => `"${p}"`).join(', ')} }\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n`,
);

async function startServer(kind) {
  const child = spawnOn(plan.server, process.execPath, [join(here, 'server.mjs'), kind], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let buffered = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 15_000);
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      if (buffered.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(buffered.split('\n')[0]).port);
      }
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { child, port };
}

/** Server process CPU time (user + system) in microseconds, asked over IPC. */
async function cpuOf(child) {
  const reply = once(child, 'message');
  child.send('cpu');
  const [usage] = await reply;
  return usage.user + usage.system;
}

/** One wrk run; returns { rps, requests }. Throws on socket errors or non-2xx answers. */
function wrk(port, seconds, lua) {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s'];
  if (lua) args.push('-s', lua);
  args.push(`http://127.0.0.1:${port}/`);
  const bin = plan.pinned ? plan.taskset : 'wrk';
  const argv = plan.pinned ? ['-c', String(plan.load), 'wrk', ...args] : args;
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      const total = /(\d+) requests in/.exec(stdout);
      if (!rps || !total) return reject(new Error(`cannot parse wrk output:\n${stdout}`));
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const hard = sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) : 0;
      if (/Non-2xx/.test(stdout) || hard > 0) return reject(new Error(`wrk saw errors:\n${stdout}`));
      // A request slower than wrk's 5 s timeout is recorded and reported, not fatal.
      const timeouts = sock ? Number(sock[4]) : 0;
      if (timeouts > 0) console.log(`  (wrk: ${timeouts} request(s) timed out after 5 s)`);
      resolve({ rps: Number(rps[1]), requests: Number(total[1]), timeouts });
    });
  });
}

/** Starts each server once, warms it up, then measures all of them in rotating order per round. */
async function measure(kinds, lua) {
  const servers = {};
  const rps = Object.fromEntries(kinds.map((k) => [k, []]));
  const cpu = Object.fromEntries(kinds.map((k) => [k, []]));
  const timeouts = Object.fromEntries(kinds.map((k) => [k, []]));
  try {
    for (const kind of kinds) servers[kind] = await startServer(kind);
    for (const kind of kinds) await wrk(servers[kind].port, WARMUP, lua);
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of rotate(kinds, round)) {
        const before = await cpuOf(servers[kind].child);
        const result = await wrk(servers[kind].port, DURATION, lua);
        const spent = (await cpuOf(servers[kind].child)) - before;
        rps[kind].push(result.rps);
        cpu[kind].push(spent / result.requests);
        timeouts[kind].push(result.timeouts);
      }
    }
  } finally {
    for (const { child } of Object.values(servers)) {
      child.kill('SIGTERM');
      await once(child, 'exit').catch(() => {});
    }
  }
  return { rps, cpu, timeouts };
}

const LABELS = {
  net: '@net/http',
  'net-schema': '@net/http with a response schema',
  raw: 'node:http (writeHead + content-length)',
  fastify: 'Fastify 5 (logger off)',
  'net-routes': '@net/http',
  'fastify-routes': 'Fastify 5 (logger off)',
};
const impls = (set, kinds) => Object.fromEntries(kinds.map((k) => [k, { label: LABELS[k], values: set[k] }]));
const vs = (ours, anchors, target = {}) => anchors.map((a) => ({ ours, anchor: a, target: target[a] }));

const started = Date.now();
const rows = [];
const hello = ['net', 'raw', 'fastify'];
// The schema variant is measured in the same rounds (same machine state) but reported as its own rows.
const helloPlus = [...hello, 'net-schema'];
const shapes = [
  ['hello', 'hello JSON, 100 connections, no pipelining (one request in flight each)', undefined, true],
  ['pipelined', 'hello JSON, 100 connections, pipelining x10', pipelineLua, false],
];
for (const [id, title, lua, headline] of shapes) {
  if (ONLY && !ONLY.includes(id)) continue;
  const kinds = headline ? helloPlus : hello;
  const m = await measure(kinds, lua);
  const targets = headline ? { raw: '>= 0.97', fastify: '>= 1.05' } : {};
  rows.push(
    row({
      id: `${id}-rps`,
      title,
      metric: 'requests/s',
      unit: 'req/s',
      headline,
      impls: impls(m.rps, hello),
      note: { wrkTimeoutsPerRound: m.timeouts },
      comparisons: vs('net', ['raw', 'fastify'], targets),
    }),
    row({
      id: `${id}-cpu`,
      title,
      metric: 'server CPU per request',
      unit: 'µs',
      better: 'lower',
      headline,
      impls: impls(m.cpu, hello),
      comparisons: vs('net', ['raw', 'fastify']),
    }),
  );
  if (!headline) continue;
  const schemaTitle = `${title}, route with a response schema (compiled serializer)`;
  const schemaImpls = ['net-schema', 'raw', 'fastify'];
  rows.push(
    row({
      id: `${id}-schema-rps`,
      title: schemaTitle,
      metric: 'requests/s',
      unit: 'req/s',
      impls: impls(m.rps, schemaImpls),
      comparisons: vs('net-schema', ['raw', 'fastify']),
    }),
    row({
      id: `${id}-schema-cpu`,
      title: schemaTitle,
      metric: 'server CPU per request',
      unit: 'µs',
      better: 'lower',
      impls: impls(m.cpu, schemaImpls),
      comparisons: vs('net-schema', ['raw', 'fastify']),
    }),
  );
}
if (!ONLY || ONLY.includes('routes')) {
  const kinds = ['net-routes', 'fastify-routes'];
  const m = await measure(kinds, routesLua);
  const title =
    '50-route table (25 static, 25 with a parameter; every route in turn), 100 connections, no pipelining';
  rows.push(
    row({
      id: 'routes-rps',
      title,
      metric: 'requests/s',
      unit: 'req/s',
      impls: impls(m.rps, kinds),
      note: { wrkTimeoutsPerRound: m.timeouts },
      comparisons: vs('net-routes', ['fastify-routes']),
    }),
    row({
      id: 'routes-cpu',
      title,
      metric: 'server CPU per request',
      unit: 'µs',
      better: 'lower',
      impls: impls(m.cpu, kinds),
      comparisons: vs('net-routes', ['fastify-routes']),
    }),
  );
}
if (!ONLY || ONLY.includes('h2')) {
  if (await haveH2load()) rows.push(...(await measureH2(plan, h2Settings())));
  else console.log('\nh2load not found (Debian nghttp2-client): the HTTP/2 rows are skipped');
}
rmSync(pipelineLua, { force: true });
rmSync(routesLua, { force: true });
for (const r of rows) printRow(r);
const seconds = (Date.now() - started) / 1000;
console.log(`\ntotal ${seconds.toFixed(1)} s`);
writeResults(
  here,
  '@net/http',
  facts,
  {
    rounds: ROUNDS,
    durationSeconds: DURATION,
    warmupSeconds: WARMUP,
    connections: CONNECTIONS,
    loadGenerator: 'wrk -t1',
    h2: { ...h2Settings(), loadGenerator: 'h2load -t1 (h2c)' },
    seconds,
  },
  rows,
);
