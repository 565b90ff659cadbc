// Benchmark: certificate generation (ours vs selfsigned vs mkcert, like with like: P-256 with
// P-256, RSA-2048 with RSA-2048; never a ratio across key types) and TLS handshakes (serverOptions()
// vs Node defaults): handshakes/s and server CPU per handshake, each server in its own child
// process pinned to core 0, the clients here on core 1 (two cores and taskset). Rounds rotate the
// order; medians and median per-round ratios. Results: bench/results.json.
//   node bench/run.mjs [--quick]; BENCH_SMOKE=1 for a smoke run.
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCert as mkcertCert, createCA as mkcertCA } from 'mkcert';
import selfsigned from 'selfsigned';
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
import {
  clientOptions,
  createCA,
  generateSecret,
  issueCertificate,
  originCheck,
  RateLimiter,
  TokenSigner,
} from '../dist/index.js';

const quick = process.argv.includes('--quick') || SMOKE;
const here = fileURLToPath(new URL('.', import.meta.url));
const plan = pinPlan();
const facts = machine(here, pinSelfAsLoad(plan));
console.log(header('@net/security', facts));
const started = Date.now();
const rows = [];

async function timeIt(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

// --- Certificate generation: a CA and one localhost leaf signed by it -----------------------
const contenders = {
  'ours P-256': async () => {
    const ca = await createCA();
    await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  },
  'selfsigned P-256': async () => {
    const ca = await selfsigned.generate([{ name: 'commonName', value: 'bench CA' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }],
    });
    await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
  },
  'ours RSA-2048': async () => {
    const ca = await createCA({ keyType: 'RSA-2048' });
    await issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], keyType: 'RSA-2048' });
  },
  'selfsigned RSA-2048': async () => {
    const ca = await selfsigned.generate([{ name: 'commonName', value: 'bench CA' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }],
    });
    await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
    });
  },
  'mkcert RSA-2048': async () => {
    const ca = await mkcertCA({
      organization: 'bench CA',
      countryCode: 'US',
      state: 'CA',
      locality: 'SF',
      validity: 365,
    });
    await mkcertCert({
      ca: { key: ca.key, cert: ca.cert },
      domains: ['localhost', '127.0.0.1'],
      validity: 365,
    });
  },
};

const rounds = { ec: quick ? 2 : 25, rsa: quick ? 1 : 7 };
const groups = {
  ec: ['ours P-256', 'selfsigned P-256'],
  rsa: ['ours RSA-2048', 'selfsigned RSA-2048', 'mkcert RSA-2048'],
};
const samples = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (const name of Object.keys(contenders)) await contenders[name](); // warm-up (JIT, module init)
for (const [group, names] of Object.entries(groups)) {
  // RSA key generation searches for primes, so single samples vary widely; more EC rounds are cheap.
  for (let r = 0; r < rounds[group]; r++) {
    for (const name of rotate(names, r)) samples[name].push(await timeIt(contenders[name]));
  }
}
const LABELS = {
  'ours P-256': '@net/security createCA + issueCertificate',
  'selfsigned P-256': 'selfsigned 5 (CA + signed leaf)',
  'ours RSA-2048': '@net/security createCA + issueCertificate',
  'selfsigned RSA-2048': 'selfsigned 5 (CA + signed leaf)',
  'mkcert RSA-2048': 'mkcert 3 (createCA + createCert; RSA only)',
};
const certImpls = (names) =>
  Object.fromEntries(names.map((n) => [n, { label: LABELS[n], values: samples[n] }]));
rows.push(
  row({
    id: 'cert-p256',
    title: 'CA + localhost leaf, P-256 keys',
    metric: 'time',
    unit: 'ms',
    better: 'lower',
    headline: true,
    impls: certImpls(groups.ec),
    comparisons: [{ ours: 'ours P-256', anchor: 'selfsigned P-256' }],
  }),
  row({
    id: 'cert-rsa2048',
    title: 'CA + localhost leaf, RSA-2048 keys',
    metric: 'time',
    unit: 'ms',
    better: 'lower',
    impls: certImpls(groups.rsa),
    comparisons: [
      { ours: 'ours RSA-2048', anchor: 'selfsigned RSA-2048', target: '<= 1.05 (time; speed >= 0.95)' },
      { ours: 'ours RSA-2048', anchor: 'mkcert RSA-2048' },
    ],
  }),
);
for (const r of rows) printRow(r);

// --- TLS handshakes per second ---------------------------------------------------------------
const ca = await createCA();
const leaf = await issueCertificate(ca, { dnsNames: ['localhost'] });

async function startServer(kind) {
  const child = spawnOn(plan.server, process.execPath, [`${here}tls-server.mjs`, kind], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_CERT: leaf.cert, BENCH_KEY: leaf.key },
  });
  const [chunk] = await once(child.stdout, 'data');
  return { child, port: JSON.parse(String(chunk).split('\n')[0]).port };
}
async function cpuOf(child) {
  const reply = once(child, 'message');
  child.send('cpu');
  const [usage] = await reply;
  return usage.user + usage.system;
}
const servers = { defaults: await startServer('defaults'), hardened: await startServer('hardened') };

/** Full handshakes (no session resumption) for `ms` with `concurrency` clients in flight. */
async function handshakes(server, client, ms, concurrency = 8) {
  const { port } = server;
  const deadline = performance.now() + ms;
  let count = 0;
  let failed = 0;
  const one = () =>
    new Promise((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...client }, () => {
        count++;
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        failed++;
        resolve();
      });
    });
  const worker = async () => {
    while (performance.now() < deadline) await one();
  };
  const cpuBefore = await cpuOf(server.child);
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const rate = count / ((performance.now() - t) / 1000);
  const cpu = ((await cpuOf(server.child)) - cpuBefore) / count;
  if (failed > 0) throw new Error(`${failed} handshakes failed`);
  return { rate, cpu };
}

const slotMs = quick ? 500 : 2500;
const pairs = quick ? 1 : 5;
const variants = {
  'TLS 1.3': ['tls13', clientOptions({ ca: ca.cert })],
  'TLS 1.2': ['tls12', clientOptions({ ca: ca.cert, maxVersion: 'TLSv1.2' })],
};
const TLS_LABELS = {
  hardened: '@net/security serverOptions()',
  defaults: "Node's defaults (cert + key only)",
};
console.log('\nTLS handshakes, P-256 certificate, 8 concurrent loopback clients, no session resumption');
for (const [label, [id, client]] of Object.entries(variants)) {
  await handshakes(servers.defaults, client, 300); // warm-up
  await handshakes(servers.hardened, client, 300);
  const res = { defaults: [], hardened: [] };
  for (let i = 0; i < pairs; i++) {
    for (const kind of rotate(['hardened', 'defaults'], i))
      res[kind].push(await handshakes(servers[kind], client, slotMs));
  }
  const impls = (key) =>
    Object.fromEntries(
      Object.entries(res).map(([k, xs]) => [k, { label: TLS_LABELS[k], values: xs.map((x) => x[key]) }]),
    );
  const title = `${label} full handshakes, P-256 leaf, 8 concurrent clients`;
  const cmp = [{ ours: 'hardened', anchor: 'defaults' }];
  const a = row({
    id: `${id}-rate`,
    title,
    metric: 'handshakes/s',
    unit: '/s',
    headline: true,
    impls: impls('rate'),
    comparisons: [{ ...cmp[0], target: '>= 0.95' }],
  });
  const b = row({
    id: `${id}-cpu`,
    title,
    metric: 'server CPU per handshake',
    unit: 'µs',
    better: 'lower',
    headline: true,
    impls: impls('cpu'),
    comparisons: cmp,
  });
  printRow(a);
  printRow(b);
  rows.push(a, b);
}
// Which option costs: serverOptions() with one option removed at a time (issue 18). Not headline.
const ABLATE = ['ciphers', 'secureOptions', 'handshakeTimeout', 'honorCipherOrder'];
for (const option of ABLATE)
  servers[`hardened-without-${option}`] = await startServer(`hardened-without-${option}`);
const ablationKinds = ['hardened', ...ABLATE.map((o) => `hardened-without-${o}`)];
for (const o of ABLATE) TLS_LABELS[`hardened-without-${o}`] = `serverOptions() without ${o}`;
const ablationPairs = quick ? 1 : 3;
const ablationSlot = quick ? 300 : 1500;
for (const [label, [id, client]] of Object.entries(variants)) {
  const res = Object.fromEntries(ablationKinds.map((k) => [k, []]));
  for (const kind of ablationKinds) await handshakes(servers[kind], client, 200); // warm-up
  for (let i = 0; i < ablationPairs; i++) {
    for (const kind of rotate(ablationKinds, i))
      res[kind].push(await handshakes(servers[kind], client, ablationSlot));
  }
  const r = row({
    id: `${id}-ablation-cpu`,
    title: `${label} full handshakes, P-256 leaf: serverOptions() with one option removed`,
    metric: 'server CPU per handshake',
    unit: 'µs',
    better: 'lower',
    impls: Object.fromEntries(
      Object.entries(res).map(([k, xs]) => [k, { label: TLS_LABELS[k], values: xs.map((x) => x.cpu) }]),
    ),
    comparisons: ABLATE.map((o) => ({ ours: 'hardened', anchor: `hardened-without-${o}` })),
    note: 'ratio > 1: the removed option costs CPU per handshake',
  });
  printRow(r);
  rows.push(r);
}
for (const { child } of Object.values(servers)) {
  child.kill('SIGTERM');
  await once(child, 'exit');
}

// --- Guards: absolute throughput (no anchor among our dependencies) --------------------------
function opsPerSec(fn, ms = quick ? 200 : 1000) {
  for (let i = 0; i < 10_000; i++) fn(i); // warm-up
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < ms) {
    for (let i = 0; i < 1000; i++) fn(n++);
  }
  return n / ((performance.now() - t) / 1000);
}
const limiter = new RateLimiter({ capacity: 1e9, refillPerSecond: 1e9, maxKeys: 10_000 });
const keys = Array.from({ length: 1000 }, (_, i) => `conn-${i}`);
const signer = new TokenSigner({ keys: [{ kid: 'k1', secret: generateSecret() }] });
const token = signer.sign({ sub: 'alice', room: 'general' });
const check = originCheck(['https://chat.example.com', 'https://*.example.com', 'http://localhost:*']);
const origins = [
  'https://chat.example.com',
  'https://a.example.com',
  'http://localhost:5173',
  'https://evil.test',
];
const guards = {
  rateLimiterTakePerSecond: opsPerSec((i) => limiter.take(keys[i % 1000])),
  tokenSignPerSecond: opsPerSec(() => signer.sign({ sub: 'alice' })),
  tokenVerifyPerSecond: opsPerSec(() => signer.verify(token)),
  originCheckPerSecond: opsPerSec((i) => check(origins[i & 3])),
};
console.log('\nGuards (operations per second, no anchor)');
for (const [name, ops] of Object.entries(guards))
  console.log(`  ${name.padEnd(28)} ${Math.round(ops).toLocaleString('en-US')}/s`);
const seconds = (Date.now() - started) / 1000;
console.log(`\ntotal ${seconds.toFixed(1)} s`);
writeResults(
  here,
  '@net/security',
  facts,
  { certRounds: rounds, tlsRounds: pairs, tlsSlotMs: slotMs, seconds },
  rows,
  { guards },
);
