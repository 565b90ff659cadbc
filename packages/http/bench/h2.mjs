// HTTP/2 throughput: @net/http (h2c) against a raw node:http2 server and Fastify 5 with
// `http2: true`, same handler, loaded with h2load (nghttp2-client). Each server runs in its own
// child process; rounds are interleaved with a rotating order and the median of the per-round
// ratios is reported, because the machine is shared and absolute numbers drift.
// Usage: pnpm --filter @net/http build && node bench/h2.mjs
//   BENCH_ROUNDS (5), BENCH_REQUESTS per run (200000), BENCH_CLIENTS (50), BENCH_STREAMS (10).
// Writes bench/results-h2.json: { date, commit, node, rows: [{ name, ours, anchor, values, median, ratio }] }.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 10);
const self = fileURLToPath(import.meta.url);
const payload = () => ({ hello: 'world' });

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
  process.on('SIGTERM', () => process.exit(0));
}

function start(kind) {
  const child = spawn(process.execPath, [self, 'serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] });
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

/** One h2load run (h2c, prior knowledge); requests per second. */
function h2load(port, requests) {
  const out = execFileSync(
    'h2load',
    [
      '-n',
      String(requests),
      '-c',
      String(CLIENTS),
      '-m',
      String(STREAMS),
      '-t',
      '1',
      `http://127.0.0.1:${port}/`,
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const rate = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const done =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const status = /status codes: (\d+) 2xx/.exec(out);
  if (rate === null || done === null) throw new Error(`unexpected h2load output:\n${out}`);
  if (Number(done[4]) > 0 || Number(done[5]) > 0 || Number(status?.[1] ?? 0) !== requests)
    throw new Error(`h2load reported failures:\n${out}`);
  return Number(rate[1]);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const kinds = ['net-h2', 'raw-h2', 'fastify-h2'];
  const servers = {};
  try {
    for (const kind of kinds) servers[kind] = await start(kind);
    for (const kind of kinds) h2load(servers[kind].port, Math.max(100, Math.floor(REQUESTS / 10)));
    const rates = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < kinds.length; i++) {
        const kind = kinds[(i + round) % kinds.length];
        rates[kind].push(h2load(servers[kind].port, REQUESTS));
      }
    }
    const rows = ['raw-h2', 'fastify-h2'].map((anchor) => {
      const ratios = rates['net-h2'].map((ours, i) => ours / rates[anchor][i]);
      return {
        name: `h2 GET / JSON: @net/http vs ${anchor === 'raw-h2' ? 'raw node:http2' : 'Fastify 5 (http2: true)'}`,
        ours: 'net-h2',
        anchor,
        values: rates['net-h2'].map((ours, i) => ({ ours, anchor: rates[anchor][i], ratio: ratios[i] })),
        median: { ours: median(rates['net-h2']), anchor: median(rates[anchor]) },
        ratio: median(ratios),
      };
    });
    let commit = 'unknown';
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {}
    const result = {
      date: new Date().toISOString(),
      commit,
      node: process.version,
      settings: {
        rounds: ROUNDS,
        requests: REQUESTS,
        clients: CLIENTS,
        streams: STREAMS,
        tool: 'h2load (h2c)',
      },
      rows,
    };
    writeFileSync(
      fileURLToPath(new URL('./results-h2.json', import.meta.url)),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    for (const row of rows) console.log(`${row.name}: ratio ${row.ratio.toFixed(3)}`);
  } finally {
    for (const { child } of Object.values(servers)) child.kill('SIGTERM');
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3]);
else await main();
