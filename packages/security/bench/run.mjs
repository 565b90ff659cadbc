// Benchmark: certificate generation (ours vs selfsigned vs mkcert) and TLS handshakes/s (our
// options vs Node defaults), interleaved A/B rounds in one run, median ratios reported.
import { once } from 'node:events';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { createCert as mkcertCert, createCA as mkcertCA } from 'mkcert';
import selfsigned from 'selfsigned';
import {
  clientOptions,
  createCA,
  generateSecret,
  issueCertificate,
  originCheck,
  RateLimiter,
  serverOptions,
  TokenSigner,
} from '../dist/index.js';

const quick = process.argv.includes('--quick');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (n, d = 2) => n.toFixed(d);

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

const rounds = { ec: quick ? 5 : 25, rsa: quick ? 2 : 7 };
const samples = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (const name of Object.keys(contenders)) await contenders[name](); // warm-up (JIT, module init)
for (let r = 0; r < rounds.rsa || r < rounds.ec; r++) {
  for (const [name, fn] of Object.entries(contenders)) {
    const isRsa = name.includes('RSA');
    if (r >= (isRsa ? rounds.rsa : rounds.ec)) continue;
    samples[name].push(await timeIt(fn));
  }
}
console.log(`machine: ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log('\nCA + leaf generation (median ms, lower is better)');
for (const [name, xs] of Object.entries(samples))
  console.log(`  ${name.padEnd(22)} ${fmt(median(xs)).padStart(9)} ms  (n=${xs.length})`);
const ours = median(samples['ours P-256']);
console.log(
  `  → ours P-256 is ${fmt(median(samples['selfsigned P-256']) / ours)}× faster than selfsigned P-256`,
);
console.log(
  `  → ours P-256 is ${fmt(median(samples['mkcert RSA-2048']) / ours)}× faster than mkcert (RSA only)`,
);
console.log(
  `  → ours RSA-2048 vs selfsigned RSA-2048: ${fmt(median(samples['selfsigned RSA-2048']) / median(samples['ours RSA-2048']))}×`,
);
console.log(`  target ≤ 15 ms for P-256 CA + leaf: ${ours <= 15 ? 'met' : 'NOT met'} (${fmt(ours)} ms)`);

// --- TLS handshakes per second ---------------------------------------------------------------
const ca = await createCA();
const leaf = await issueCertificate(ca, { dnsNames: ['localhost'] });

async function listen(options) {
  const server = tls.createServer(options, (s) => {
    s.on('error', () => {});
    s.end();
  });
  server.on('tlsClientError', (_e, s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const hardened = await listen(serverOptions(leaf));
const defaults = await listen({ cert: leaf.cert, key: leaf.key });

/** Full handshakes (no session resumption) for `ms` with `concurrency` clients in flight. */
async function handshakes(server, client, ms, concurrency = 8) {
  const { port } = server.address();
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
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed > 0) throw new Error(`${failed} handshakes failed`);
  return count / ((performance.now() - t) / 1000);
}

const slotMs = quick ? 700 : 2500;
const pairs = quick ? 2 : 4;
const variants = {
  'TLS 1.3': clientOptions({ ca: ca.cert }),
  'TLS 1.2': clientOptions({ ca: ca.cert, maxVersion: 'TLSv1.2' }),
};
console.log('\nTLS handshakes/s, P-256 certificate, 8 concurrent clients on loopback (higher is better)');
for (const [label, client] of Object.entries(variants)) {
  await handshakes(defaults, client, 300); // warm-up
  await handshakes(hardened, client, 300);
  const ratios = [];
  const a = [];
  const b = [];
  for (let i = 0; i < pairs; i++) {
    // Alternate which goes first so drift on the shared machine does not favour one side.
    const first = i % 2 === 0;
    const d1 = first ? await handshakes(defaults, client, slotMs) : undefined;
    const h = await handshakes(hardened, client, slotMs);
    const d = first ? d1 : await handshakes(defaults, client, slotMs);
    a.push(d);
    b.push(h);
    ratios.push(h / d);
  }
  console.log(
    `  ${label}: Node defaults ${fmt(median(a), 0)}/s, serverOptions ${fmt(median(b), 0)}/s, median ratio ${fmt(median(ratios), 3)}× (target ≥ 0.95)`,
  );
}
hardened.close();
defaults.close();

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
console.log('\nGuards (operations per second)');
console.log(
  `  RateLimiter.take, 1000 keys     ${fmt(opsPerSec((i) => limiter.take(keys[i % 1000])) / 1e6, 2)} M/s`,
);
console.log(
  `  TokenSigner.sign                ${fmt(opsPerSec(() => signer.sign({ sub: 'alice' })) / 1e3, 0)} k/s`,
);
console.log(`  TokenSigner.verify              ${fmt(opsPerSec(() => signer.verify(token)) / 1e3, 0)} k/s`);
console.log(`  originCheck                     ${fmt(opsPerSec((i) => check(origins[i & 3])) / 1e6, 2)} M/s`);
