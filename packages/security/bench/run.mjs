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

// `--tls` runs only the handshake part (for investigating; its results file lacks the certificate rows).
const tlsOnly = process.argv.includes('--tls');
const rounds = { ec: quick ? 2 : 25, rsa: quick ? 1 : 7 };
if (!tlsOnly) {
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
      await issueCertificate(ca, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        keyType: 'RSA-2048',
      });
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
}

// --- TLS handshakes: server CPU per handshake ------------------------------------------------
// Every server variant listens in ONE child process pinned to the server core (tls-server.mjs),
// so they share heap, JIT and core; the clients run here on the load core. Each slot is a fixed
// number of full handshakes against one variant; rounds alternate the variants (rotated order)
// and CPU is the child's process.cpuUsage() delta after a full GC at both ends, divided by the
// handshakes of the slot. `defaults-bis` (Node's defaults again) is the A/A control.
const ca = await createCA();
const leaf = await issueCertificate(ca, { dnsNames: ['localhost'] });
const VARIANT_NAMES = [
  'defaults',
  'defaults-bis',
  'ours',
  'defaults+ciphers',
  'defaults+secureOptions',
  'defaults+handshakeTimeout',
  'defaults+honorCipherOrder',
  'ours-x25519',
  'ours-p256',
  'ours-noticket',
  'ours-sigalgs',
];
const server = spawnOn(plan.server, process.execPath, ['--expose-gc', `${here}tls-server.mjs`], {
  stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  env: {
    ...process.env,
    BENCH_CERT: leaf.cert,
    BENCH_KEY: leaf.key,
    BENCH_VARIANTS: VARIANT_NAMES.join(','),
  },
});
process.on('exit', () => server.kill()); // never leave the server behind if the run fails
const [hello] = await once(server.stdout, 'data');
const { ports, labels: TLS_LABELS } = JSON.parse(String(hello).split('\n')[0]);
async function serverCpu() {
  const reply = once(server, 'message');
  server.send('cpu');
  const [micros] = await reply;
  return micros;
}

/** A session (TLS 1.2 ticket or TLS 1.3 NewSessionTicket) from one full handshake, for resumption. */
async function sessionFrom(port, client) {
  const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...client });
  // The servers wait for the client to close, so a TLS 1.3 ticket (sent after the handshake) arrives.
  const [session] = await Promise.race([
    once(s, 'session'),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`no session ticket from port ${port}`)), 5000),
    ),
  ]);
  s.destroy();
  return session;
}

/** `count` handshakes with `concurrency` clients in flight: { rate /s, cpu µs per handshake }. */
async function handshakes(port, client, count, concurrency = 8) {
  let started = 0;
  let done = 0;
  let failed = 0;
  let reused = 0;
  const one = () =>
    new Promise((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...client }, () => {
        done++;
        if (s.isSessionReused()) reused++;
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        failed++;
        resolve();
      });
    });
  const worker = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  const cpuBefore = await serverCpu();
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const rate = done / ((performance.now() - t) / 1000);
  const cpu = ((await serverCpu()) - cpuBefore) / done;
  if (failed > 0) throw new Error(`${failed} handshakes failed on port ${port}`);
  if (client.session && reused !== done) throw new Error(`only ${reused}/${done} sessions resumed`);
  return { rate, cpu };
}

const perSlot = quick ? 40 : 400;
const tlsRounds = quick ? 1 : 7;
const variants = {
  'TLS 1.3': ['tls13', clientOptions({ ca: ca.cert })],
  'TLS 1.2': ['tls12', clientOptions({ ca: ca.cert, maxVersion: 'TLSv1.2' })],
};
/** Alternating rounds over `names`; per-name arrays of { rate, cpu }. */
async function measure(names, clientFor, count) {
  const res = Object.fromEntries(names.map((k) => [k, []]));
  for (const k of names) await handshakes(ports[k], clientFor(k), 60); // warm-up
  for (let i = 0; i < tlsRounds; i++) {
    for (const k of rotate(names, i)) res[k].push(await handshakes(ports[k], clientFor(k), count));
  }
  return res;
}
const implsOf = (res, key, labelOf = (k) => TLS_LABELS[k]) =>
  Object.fromEntries(
    Object.entries(res).map(([k, xs]) => [k, { label: labelOf(k), values: xs.map((x) => x[key]) }]),
  );
const OPTION_ROWS = VARIANT_NAMES.filter((k) => k !== 'defaults' && k !== 'ours');
console.log('\nTLS handshakes, P-256 certificate, 8 concurrent loopback clients');
for (const [label, [id, client]] of Object.entries(variants)) {
  const res = await measure(VARIANT_NAMES, () => client, perSlot);
  const title = `${label} full handshakes, P-256 leaf, 8 concurrent clients`;
  const head = { defaults: res.defaults, ours: res.ours };
  const headline = [
    row({
      id: `${id}-rate`,
      title,
      metric: 'handshakes/s',
      unit: '/s',
      headline: true,
      impls: implsOf(head, 'rate'),
      comparisons: [{ ours: 'ours', anchor: 'defaults', target: '>= 0.95' }],
      note: 'the load generator (one core) limits the rate; the server CPU row is the cost',
    }),
    row({
      id: `${id}-cpu`,
      title,
      metric: 'server CPU per handshake',
      unit: 'µs',
      better: 'lower',
      headline: true,
      impls: implsOf(head, 'cpu'),
      comparisons: [{ ours: 'ours', anchor: 'defaults', target: '<= 1.05' }],
    }),
    row({
      id: `${id}-options-cpu`,
      title: `${label} full handshakes, P-256 leaf: which option costs`,
      metric: 'server CPU per handshake',
      unit: 'µs',
      better: 'lower',
      impls: implsOf(res, 'cpu'),
      // First the A/A control (the same configuration twice): the noise floor for the other ratios.
      comparisons: OPTION_ROWS.map((k) => ({ ours: k, anchor: k.startsWith('ours') ? 'ours' : 'defaults' })),
      note: 'ratio > 1: the option costs CPU per handshake; compare with the A/A control of the headline row',
    }),
  ];
  for (const r of headline) printRow(r);
  rows.push(...headline);
  // Resumed handshakes (session tickets): what a returning client costs with each configuration.
  const sessions = {
    defaults: await sessionFrom(ports.defaults, client),
    ours: await sessionFrom(ports.ours, client),
  };
  const resumed = await measure(['defaults', 'ours'], (k) => ({ ...client, session: sessions[k] }), perSlot);
  const r = row({
    id: `${id}-resumed-cpu`,
    title: `${label} resumed handshakes (session ticket), P-256 leaf, 8 concurrent clients`,
    metric: 'server CPU per handshake',
    unit: 'µs',
    better: 'lower',
    impls: implsOf(resumed, 'cpu'),
    comparisons: [{ ours: 'ours', anchor: 'defaults' }],
  });
  printRow(r);
  rows.push(r);
}
// What each variant negotiates with this client: equal suites and groups mean equal crypto work,
// so a CPU difference between such variants is configuration overhead or noise (see the A/A row).
const negotiated = {};
for (const [label, [, client]] of Object.entries(variants)) {
  for (const name of VARIANT_NAMES) {
    const s = tls.connect({ port: ports[name], host: '127.0.0.1', servername: 'localhost', ...client });
    await once(s, 'secureConnect');
    const key = s.getEphemeralKeyInfo();
    negotiated[`${label} ${name}`] =
      `${s.getProtocol()} ${s.getCipher().standardName} ${key.name ?? key.type}`;
    s.destroy();
  }
}
console.log('\nNegotiated with clientOptions():');
for (const [k, v] of Object.entries(negotiated)) console.log(`  ${k.padEnd(36)} ${v}`);
server.kill('SIGTERM');
await once(server, 'exit');

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
  { certRounds: rounds, tlsRounds, tlsHandshakesPerSlot: perSlot, seconds },
  rows,
  { guards, negotiated },
);
