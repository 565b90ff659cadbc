// Profiles the hello-JSON path of @net/http, raw node:http and Fastify 5 with --cpu-prof while wrk
// (100 connections, no pipelining) drives each, pinned like bench/run.mjs. Prints server CPU µs per
// request and where the server's time goes (self time by function and by origin), and keeps the
// .cpuprofile files for Chrome DevTools.
//   node bench/profile.mjs [seconds=5] [kinds=net,raw,fastify]   (BENCH_SMOKE=1: 1 s)
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinPlan, pinSelfAsLoad, SMOKE, spawnOn } from '../../../scripts/bench/lib.mjs';

const SECONDS = Number(process.argv[2] ?? (SMOKE ? 1 : 5));
const KINDS = (process.argv[3] ?? 'net,raw,fastify').split(',');
const here = fileURLToPath(new URL('.', import.meta.url));
const plan = pinPlan();
console.log(`pinning: ${pinSelfAsLoad(plan)}; wrk -t1 -c100 -d${SECONDS}s, no pipelining`);
const outDir = mkdtempSync(join(tmpdir(), 'net-http-profile-'));

function wrk(port, seconds) {
  const args = ['-t1', '-c100', `-d${seconds}s`, `http://127.0.0.1:${port}/`];
  const [bin, argv] = plan.pinned ? [plan.taskset, ['-c', String(plan.load), 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { encoding: 'utf8' }, (err, stdout) => {
      if (err) return reject(err);
      resolve(Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN));
    });
  });
}

async function profile(kind) {
  const dir = join(outDir, kind);
  const child = spawnOn(
    plan.server,
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(here, 'server.mjs'), kind],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
    plan,
  );
  const [line] = await once(child.stdout, 'data');
  const { port } = JSON.parse(String(line).split('\n')[0]);
  await wrk(port, 1); // warm-up
  const cpu = async () => {
    const reply = once(child, 'message');
    child.send('cpu');
    const [u] = await reply;
    return u.user + u.system;
  };
  const before = await cpu();
  const requests = await wrk(port, SECONDS);
  const spent = (await cpu()) - before;
  child.kill('SIGTERM');
  await once(child, 'exit');
  const file = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.cpuprofile')),
  );
  return { kind, cpuPerRequest: spent / requests, requests, file };
}

function origin(url) {
  if (url === '') return 'native / V8 / GC';
  if (url.includes('/packages/http/dist/')) return '@net/http';
  if (
    url.includes('fastify') ||
    url.includes('find-my-way') ||
    url.includes('avvio') ||
    url.includes('light-my-request')
  )
    return 'Fastify and its deps';
  if (url.startsWith('node:')) return 'Node core (JS)';
  return 'other JS';
}

function summarise({ file }) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const byFn = new Map();
  const byOrigin = new Map();
  let idle = 0;
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') {
      idle += t;
      continue;
    }
    const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + t);
    // A route's compiled response serializer comes from new Function: no URL, names f0, f1, ...
    const compiled = url === '' && /^(f\d+|serialize)$/.test(functionName);
    const o = functionName.startsWith('(')
      ? `${functionName}`
      : compiled
        ? '@net/http (compiled serializer)'
        : origin(url);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + t);
  }
  const busy = total - idle;
  const pct = (t) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
  console.log(
    `  busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms profiled; share of busy time by origin:`,
  );
  for (const [o, t] of [...byOrigin].sort((a, b) => b[1] - a[1])) console.log(`    ${pct(t)}  ${o}`);
  console.log('  top functions by self time:');
  for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${pct(t)}  ${k}`);
}

for (const kind of KINDS) {
  const r = await profile(kind);
  console.log(
    `\n${kind}: ${r.cpuPerRequest.toFixed(2)} µs server CPU per request over ${r.requests} requests (profiler on); ${r.file}`,
  );
  summarise(r);
}
