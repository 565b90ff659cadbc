// One TLS server per process for the handshake bench: `node bench/tls-server.mjs <hardened|defaults|hardened-without-<option>>`
// with BENCH_CERT / BENCH_KEY (PEM) in the environment. Prints {"port":N}; answers "cpu" over IPC
// with its process CPU time, so the runner can report server CPU per handshake.
import tls from 'node:tls';
import { serverOptions } from '../dist/index.js';

const kind = process.argv[2];
const leaf = { cert: process.env.BENCH_CERT, key: process.env.BENCH_KEY };
// `hardened-without-<option>` is serverOptions() with that one option removed (Node's default
// applies instead), to find which option costs CPU per handshake.
let options = null;
if (kind === 'hardened') options = serverOptions(leaf);
else if (kind === 'defaults') options = leaf;
else if (kind.startsWith('hardened-without-')) {
  options = serverOptions(leaf);
  const option = kind.slice('hardened-without-'.length);
  if (!(option in options)) throw new Error(`serverOptions() has no ${option}`);
  delete options[option];
}
if (options === null) throw new Error(`unknown server kind ${kind}`);
const server = tls.createServer(options, (socket) => {
  socket.on('error', () => {});
  socket.end();
});
server.on('tlsClientError', (_err, socket) => socket.destroy());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('message', (msg) => {
  if (msg === 'cpu') process.send(process.cpuUsage());
});
process.on('SIGTERM', () => process.exit(0));
