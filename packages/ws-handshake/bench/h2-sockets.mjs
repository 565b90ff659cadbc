// Many WebSockets over one HTTP/2 connection (RFC 8441) against one HTTP/1.1 connection each,
// both over TLS, our server and our client both ways (`connect(url, { http2: true })` vs plain):
//   memory per socket, server and client (heap + external, and RSS; deltas after GC), and the
//   time to open them all, with each socket's handshake time (connect() call to open, p50/p99).
//   node bench/h2-sockets.mjs [--n 1000] [--rounds 3] [--concurrency 100] [--json]
// Each round starts a fresh server process (pinned to the server core) and a fresh client
// process (pinned to the load core), so neither side inherits the other mode's heap. `--json`
// prints one H2_SOCKETS_JSON line with every round's values, for bench/run.mjs (which writes
// results.json). Internal roles: `server <h1|h2> <certDir> <n>`, `client <h1|h2> <port> <n>
// <concurrency> <certDir>`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const self = fileURLToPath(import.meta.url);
const [role, ...rest] = process.argv.slice(2);

/** Heap + external (which includes array buffers) and RSS, after full collections. */
function memory() {
  for (let i = 0; i < 4; i++) globalThis.gc?.();
  const m = process.memoryUsage();
  return { js: m.heapUsed + m.external, rss: m.rss };
}

/** Lines on stdin as commands; `reply(line)` answers each. */
function commands(reply) {
  createInterface({ input: process.stdin }).on('line', (line) => reply(line.trim()));
}

if (role === 'server') await server(...rest);
else if (role === 'client') await client(...rest);
else await orchestrate();

async function server(mode, certDir, n) {
  const { WebSocketServer } = await import('../dist/index.js');
  const key = readFileSync(join(certDir, 'key.pem'));
  const cert = readFileSync(join(certDir, 'cert.pem'));
  const wss = new WebSocketServer();
  let http;
  if (mode === 'h2') {
    const http2 = await import('node:http2');
    // Every WebSocket holds its stream open: the session must allow them all at once.
    http = http2.createSecureServer({
      key,
      cert,
      settings: { enableConnectProtocol: true, maxConcurrentStreams: Number(n) + 100 },
    });
    wss.attachH2(http);
  } else {
    const https = await import('node:https');
    http = https.createServer({ key, cert });
    wss.attach(http);
  }
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  http.listen(0, '127.0.0.1', () => console.log(`READY ${http.address().port}`));
  commands((line) => {
    if (line === 'MEM') console.log(`MEM ${JSON.stringify(memory())}`);
    if (line === 'COUNT') console.log(`COUNT ${wss.clients.size}`);
  });
  process.on('SIGINT', () => process.exit(0));
}

async function client(mode, port, nArg, concurrencyArg, certDir) {
  const { connect } = await import('../dist/index.js');
  const n = Number(nArg);
  const concurrency = Number(concurrencyArg);
  // One options object for every socket, as an application would pass (the h2 pool keys on it).
  const options = { tls: { ca: readFileSync(join(certDir, 'cert.pem')) }, handshakeTimeout: 60_000 };
  if (mode === 'h2') options.http2 = true;
  const url = `wss://127.0.0.1:${port}/`;
  const before = memory();
  const sockets = [];
  const times = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      next++;
      const t0 = performance.now();
      const ws = await connect(url, options);
      times.push(performance.now() - t0);
      sockets.push(ws);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const openMs = performance.now() - started;
  // Every socket works: one round trip each before anything is measured.
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          ws.once('message', resolve);
          ws.send('x');
        }),
    ),
  );
  if (mode === 'h2' && sockets.some((ws) => ws.transport !== 'h2')) throw new Error('not over h2');
  const after = memory();
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  console.log(
    `RESULT ${JSON.stringify({
      openMs,
      p50: q(0.5),
      p99: q(0.99),
      clientJs: (after.js - before.js) / n,
      clientRss: (after.rss - before.rss) / n,
    })}`,
  );
  commands((line) => {
    if (line === 'EXIT') {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    }
  });
}

async function orchestrate() {
  const { pinPlan, pinSelfAsLoad, spawnOn } = await import('../../../scripts/bench/lib.mjs');
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      n: { type: 'string', default: process.env.H2_SOCKETS ?? '1000' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
    },
  });
  const N = Number(values.n);
  const ROUNDS = Number(values.rounds);
  const CONCURRENCY = Number(values.concurrency);
  const plan = pinPlan();
  const pinning = pinSelfAsLoad(plan);
  const certDir = mkdtempSync(join(tmpdir(), 'h2-sockets-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-days',
      '1',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );

  /** A child speaking the line protocol above. */
  function child(core, args) {
    const proc = spawnOn(
      core,
      process.execPath,
      ['--expose-gc', self, ...args],
      { stdio: ['pipe', 'pipe', 'inherit'] },
      plan,
    );
    let buf = '';
    const waiters = [];
    proc.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiters.findIndex((x) => line.startsWith(x.prefix));
        if (w !== -1) waiters.splice(w, 1)[0].resolve(line.slice(line.indexOf(' ') + 1));
      }
    });
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    const expect = (prefix) =>
      Promise.race([
        new Promise((resolve) => waiters.push({ prefix, resolve })),
        exited.then((code) => {
          throw new Error(`${args[0]} ${args[1]} exited (${code}) before ${prefix}`);
        }),
      ]);
    return {
      expect,
      ask(line, reply) {
        const p = expect(reply);
        proc.stdin.write(`${line}\n`);
        return p;
      },
      send: (line) => proc.stdin.write(`${line}\n`),
      stop() {
        proc.kill('SIGINT');
        return exited;
      },
      exited,
    };
  }

  async function round(mode) {
    const srv = child(plan.server, ['server', mode, certDir, String(N)]);
    try {
      const port = Number(await srv.expect('READY'));
      const base = JSON.parse(await srv.ask('MEM', 'MEM'));
      const cli = child(plan.load, ['client', mode, String(port), String(N), String(CONCURRENCY), certDir]);
      try {
        const result = JSON.parse(await cli.expect('RESULT'));
        const count = Number(await srv.ask('COUNT', 'COUNT'));
        if (count !== N) throw new Error(`${mode}: server holds ${count} of ${N} sockets`);
        const mem = JSON.parse(await srv.ask('MEM', 'MEM'));
        return { ...result, serverJs: (mem.js - base.js) / N, serverRss: (mem.rss - base.rss) / N };
      } finally {
        cli.send('EXIT');
        await cli.exited;
      }
    } finally {
      await srv.stop();
    }
  }

  const results = { h2: [], h1: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 === 0 ? ['h1', 'h2'] : ['h2', 'h1']) results[mode].push(await round(mode));
    }
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
  if (values.json) {
    console.log(`H2_SOCKETS_JSON ${JSON.stringify({ n: N, concurrency: CONCURRENCY, pinning, results })}`);
    process.exit(0);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(
    `\n${N} WebSockets over TLS, ${CONCURRENCY} handshakes in flight; ${pinning}; median of ${ROUNDS} rounds\n`,
  );
  console.log('| measure | one HTTP/2 connection | HTTP/1.1 connection each | h2 / h1 |');
  console.log('| --- | --: | --: | --: |');
  for (const [label, key] of [
    ['time to open all (ms)', 'openMs'],
    ['handshake p50 (ms)', 'p50'],
    ['handshake p99 (ms)', 'p99'],
    ['server heap + external per socket (B)', 'serverJs'],
    ['server RSS per socket (B)', 'serverRss'],
    ['client heap + external per socket (B)', 'clientJs'],
    ['client RSS per socket (B)', 'clientRss'],
  ]) {
    const a = median(results.h2.map((v) => v[key]));
    const b = median(results.h1.map((v) => v[key]));
    console.log(`| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}× |`);
  }
  process.exit(0);
}
