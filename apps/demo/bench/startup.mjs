// Start-up cost of the file store against the size of its history: writes a synthetic segmented
// log (default 1 GiB, and a 10x smaller one to compare), starts `node dist/server.js` on each and
// measures the time to "ready" and the server's RSS (now and peak). With retention, both should
// read the same retained tail, so time and memory should not follow the total size.
//
//   node bench/startup.mjs [--sizes-mb 1024,100] [--rooms 20] [--retention 10000] [--segment-mb 16]
//                          [--text 200] [--dir /tmp] [--keep]
//
// Everything is written under a fresh temporary directory, deleted at the end (--keep keeps it).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'sizes-mb': { type: 'string', default: '1024,100' },
    rooms: { type: 'string', default: '20' },
    retention: { type: 'string', default: '10000' },
    'segment-mb': { type: 'string', default: '16' },
    text: { type: 'string', default: '200' },
    dir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
  },
});
const sizes = values['sizes-mb'].split(',').map(Number);
const rooms = Number(values.rooms);
const segmentBytes = Number(values['segment-mb']) * 1024 * 1024;
const textLen = Number(values.text);
const SERVER = new URL('../dist/server.js', import.meta.url).pathname;

/**
 * Writes segments in the store's format (see src/store/segments.ts): numbered JSON-lines files,
 * each sealed one with its index; the last one is the (empty) active segment.
 */
function generate(dataDir, totalBytes) {
  const logDir = join(dataDir, 'log');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const pad = 'x'.repeat(textLen);
  const t0 = Date.now() - 3 * 86_400_000;
  let ms = t0;
  let seq = 1;
  let written = 0;
  let messages = 0;
  while (written < totalBytes) {
    const name = String(seq).padStart(10, '0');
    const fd = openSync(join(logDir, `${name}.log`), 'w', 0o600);
    const counts = new Map();
    let bytes = 0;
    let count = 0;
    let last = '0-0';
    let chunk = [];
    let chunkLen = 0;
    while (bytes < segmentBytes && written + bytes < totalBytes) {
      ms += 1;
      const room = `room${(messages * 7919) % rooms}`;
      const id = `${ms}-0`;
      const line = `${JSON.stringify({ id, room, nick: `user${messages % 500}`, text: `${messages} ${pad}`, ts: ms })}\n`;
      chunk.push(line);
      chunkLen += line.length;
      bytes += line.length;
      count++;
      messages++;
      last = id;
      counts.set(room, (counts.get(room) ?? 0) + 1);
      if (chunkLen > 1 << 20) {
        writeSync(fd, chunk.join(''));
        chunk = [];
        chunkLen = 0;
      }
    }
    if (chunk.length) writeSync(fd, chunk.join(''));
    closeSync(fd);
    const index = { v: 1, seq, bytes, count, last, maxTs: ms, rooms: [...counts] };
    const ifd = openSync(join(logDir, `${name}.idx`), 'w', 0o600);
    writeSync(ifd, JSON.stringify(index));
    closeSync(ifd);
    written += bytes;
    seq++;
  }
  closeSync(openSync(join(logDir, `${String(seq).padStart(10, '0')}.log`), 'w', 0o600));
  return { written, messages, segments: seq };
}

function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: get('VmRSS'), peak: get('VmHWM') };
}

async function startOnce(dataDir) {
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [
      SERVER,
      '--host',
      '127.0.0.1',
      '--tcp-port',
      '0',
      '--http-port',
      '0',
      '--udp-port',
      '0',
      '--data-dir',
      dataDir,
      '--retention',
      values.retention,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 600 s\n${err}`)), 600_000);
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited ${code}\n${err}`)));
  });
  const ms = performance.now() - t0;
  const mem = rssKiB(proc.pid);
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
  return { ms, ...mem };
}

const root = mkdtempSync(join(values.dir, 'chat-startup-'));
const rows = [];
try {
  for (const mb of sizes) {
    const dataDir = join(root, `log-${mb}mb`);
    const g0 = performance.now();
    const g = generate(dataDir, mb * 1024 * 1024);
    const genS = (performance.now() - g0) / 1000;
    process.stderr.write(
      `generated ${(g.written / 1048576).toFixed(0)} MiB, ${g.messages} messages, ${g.segments} segments in ${genS.toFixed(1)} s\n`,
    );
    const first = await startOnce(dataDir); // drops what retention does not keep
    const second = await startOnce(dataDir);
    rows.push({ mb, messages: g.messages, first, second });
    rmSync(dataDir, { recursive: true, force: true });
  }
} finally {
  if (!values.keep) rmSync(root, { recursive: true, force: true });
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`file store start-up, ${rooms} rooms, --retention ${values.retention}, load average ${load}`);
console.log('| log size | messages | 1st start (drops) | RSS | peak RSS | 2nd start | RSS | peak RSS |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
const f = (x) => `${(x / 1024).toFixed(0)} MiB`;
for (const r of rows) {
  console.log(
    `| ${r.mb} MiB | ${r.messages} | ${(r.first.ms / 1000).toFixed(2)} s | ${f(r.first.rss)} | ${f(r.first.peak)} | ${(r.second.ms / 1000).toFixed(2)} s | ${f(r.second.rss)} | ${f(r.second.peak)} |`,
  );
}
