// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function (top N), and the
// share of GC, idle and program time, optionally only inside a time window (CLOCK_MONOTONIC µs, as
// bench/socketio.mjs --fixed prints per step). Also groups self time by file.
//   node bench/prof-summary.mjs <file.cpuprofile> [--from µs --to µs] [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '30' } },
});
const prof = JSON.parse(readFileSync(positionals[0], 'utf8'));
const from = values.from ? Number(values.from) : -Infinity;
const to = values.to ? Number(values.to) : Infinity;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const files = new Map();
let t = prof.startTime;
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i];
  // A sample's time is attributed until the next sample.
  const dt = prof.timeDeltas[i + 1] ?? 0;
  if (t < from || t > to) continue;
  const n = byId.get(prof.samples[i]);
  const cf = n.callFrame;
  const file = cf.url
    ? cf.url.replace(/^.*\/(node_modules\/(?:\.pnpm\/)?|packages\/|apps\/)/, '')
    : '(native)';
  const key = `${cf.functionName || '(anonymous)'}  ${file}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  const fileKey = cf.url ? file.replace(/:\d+$/, '') : cf.functionName;
  files.set(fileKey, (files.get(fileKey) ?? 0) + dt);
  total += dt;
}
const pct = (v) => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
const ms = (v) => `${(v / 1000).toFixed(1).padStart(9)} ms`;
console.log(`window ${(total / 1e6).toFixed(2)} s of samples`);
const idle = self.get('(idle)  (native):0') ?? 0;
const busy = total - idle;
console.log(`idle ${pct(idle)}; busy ${ms(busy)} (percentages below are of the whole window)`);
console.log('\ntop self time:');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)))
  console.log(`${pct(v)} ${ms(v)}  ${k}`);
console.log('\nby file:');
for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(`${pct(v)} ${ms(v)}  ${k}`);
