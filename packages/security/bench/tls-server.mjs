// TLS servers for the handshake bench, all in ONE process (so every variant shares the same heap,
// JIT state and core): `node --expose-gc bench/tls-server.mjs` with BENCH_CERT / BENCH_KEY (PEM)
// and BENCH_VARIANTS (comma-separated names from VARIANTS below) in the environment.
// Prints {"ports":{name:port},"labels":{name:label}}; answers "cpu" over IPC with its CPU time
// (after a full GC, so a slot's garbage is paid inside that slot), letting the runner alternate
// variants round by round and divide the CPU delta by the handshakes of the slot.
import { constants } from 'node:crypto';
import tls from 'node:tls';
import { serverOptions, TLS_CIPHERS } from '../dist/index.js';

const leaf = { cert: process.env.BENCH_CERT, key: process.env.BENCH_KEY };
const ours = () => serverOptions(leaf);

/**
 * Each variant: [label, options]. `defaults` is Node with only cert + key; `defaults-bis` is the
 * same configuration on a second listener (the A/A control: its ratio to `defaults` is the noise
 * floor of the run). `defaults+<option>` adds one option of serverOptions() to Node's defaults;
 * `ours-<x>` changes one thing of serverOptions() that it does not set (key exchange group,
 * tickets, signature algorithms) to show what those cost.
 */
export const VARIANTS = {
  defaults: ["Node's defaults (cert + key only)", () => ({ ...leaf })],
  'defaults-bis': ["Node's defaults, second listener (A/A control)", () => ({ ...leaf })],
  ours: ['@net/security serverOptions()', ours],
  'defaults+ciphers': ['defaults + ciphers: TLS_CIPHERS', () => ({ ...leaf, ciphers: TLS_CIPHERS })],
  'defaults+secureOptions': [
    'defaults + secureOptions: SSL_OP_NO_RENEGOTIATION',
    () => ({ ...leaf, secureOptions: constants.SSL_OP_NO_RENEGOTIATION }),
  ],
  'defaults+handshakeTimeout': [
    'defaults + handshakeTimeout: 10 s',
    () => ({ ...leaf, handshakeTimeout: 10_000 }),
  ],
  // Node's tls.Server defaults honorCipherOrder to true (server order); serverOptions() sets false.
  'defaults+honorCipherOrder': [
    'defaults + honorCipherOrder: false',
    () => ({ ...leaf, honorCipherOrder: false }),
  ],
  'ours-x25519': ['serverOptions() + ecdhCurve: X25519', () => ({ ...ours(), ecdhCurve: 'X25519' })],
  'ours-p256': ['serverOptions() + ecdhCurve: P-256', () => ({ ...ours(), ecdhCurve: 'P-256' })],
  'ours-noticket': [
    'serverOptions() + SSL_OP_NO_TICKET',
    () => {
      const o = ours();
      return { ...o, secureOptions: (o.secureOptions ?? 0) | constants.SSL_OP_NO_TICKET };
    },
  ],
  'ours-sigalgs': [
    'serverOptions() + sigalgs: ECDSA P-256/SHA-256 only',
    () => ({ ...ours(), sigalgs: 'ecdsa_secp256r1_sha256' }),
  ],
};

const names = (process.env.BENCH_VARIANTS ?? 'defaults,ours').split(',');
const ports = {};
const labels = {};
for (const name of names) {
  const variant = VARIANTS[name];
  if (!variant) throw new Error(`unknown server variant ${name}`);
  const server = tls.createServer(variant[1](), (socket) => {
    // Wait for the client to close (it does right after the handshake): a TLS 1.3 client then
    // still reads the session tickets, which an immediate end() would cut off.
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.resume();
  });
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports[name] = server.address().port;
  labels[name] = variant[0];
}
process.stdout.write(`${JSON.stringify({ ports, labels })}\n`);
process.on('message', (msg) => {
  if (msg !== 'cpu') return;
  globalThis.gc?.();
  const { user, system } = process.cpuUsage();
  process.send(user + system);
});
process.on('SIGTERM', () => process.exit(0));
