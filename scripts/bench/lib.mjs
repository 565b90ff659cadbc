// Shared helpers for every package's bench/: machine facts, core pinning, child CPU time,
// medians, rotation, and bench/results.json with a short history of runs.
// Not published; imported by relative path from packages/*/bench and apps/demo/bench.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

/** How many past runs each results.json keeps (the root README shows their range). */
export const HISTORY = 5;

/** True when the run was started as a smoke test (tiny counts): its figures are never shown. */
export const SMOKE = process.env.BENCH_SMOKE === '1';

export const median = (xs) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The order for one round: rotated by `round` so no implementation always runs first. */
export const rotate = (keys, round) => keys.map((_, i) => keys[(i + round) % keys.length]);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/**
 * Core plan: with >= 2 cores and taskset, servers run on core 0 and the load generator (this
 * process and anything it spawns as load) on core 1. BENCH_PIN=0 turns pinning off.
 */
export function pinPlan() {
  const cores = os.cpus().length;
  const taskset = which('taskset');
  if (process.env.BENCH_PIN === '0') return { pinned: false, reason: 'BENCH_PIN=0', cores };
  if (cores < 2) return { pinned: false, reason: 'only one core', cores };
  if (taskset === null) return { pinned: false, reason: 'taskset not found (util-linux)', cores };
  return { pinned: true, taskset, server: 0, load: 1, cores };
}

/** Pins this process (all its threads) to the load-generator core; returns a sentence for the output. */
export function pinSelfAsLoad(plan = pinPlan()) {
  if (!plan.pinned) return `not pinned (${plan.reason})`;
  execFileSync(plan.taskset, ['-a', '-p', '-c', String(plan.load), String(process.pid)], {
    stdio: 'ignore',
  });
  return `server on core ${plan.server}, load generator on core ${plan.load} (taskset)`;
}

/** Spawns `cmd args` on `core` (when pinning is on); same options as child_process.spawn. */
export function spawnOn(core, cmd, args, options, plan = pinPlan()) {
  if (!plan.pinned || core === undefined) return spawn(cmd, args, options);
  return spawn(plan.taskset, ['-c', String(core), cmd, ...args], options);
}

/** A child's CPU time (user + system, µs) from /proc/<pid>/stat; null where /proc is missing. */
export function procCpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return (ticks * 1e6) / clockTicks();
  } catch {
    return null;
  }
}
let hz;
function clockTicks() {
  if (hz === undefined) {
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      hz = 100;
    }
  }
  return hz;
}

function gitCommit(cwd) {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    // Uncommitted changes in the package (the results file itself aside) mark the commit dirty.
    const dirty = execFileSync('git', ['status', '--porcelain', '--', '..', ':(exclude)results.json'], {
      cwd,
      encoding: 'utf8',
    });
    return dirty.trim() === '' ? head : `${head}+dirty`;
  } catch {
    return 'unknown';
  }
}

/** Machine and run facts recorded with every run. */
export function machine(cwd, pinning) {
  return {
    date: new Date().toISOString(),
    commit: gitCommit(cwd),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadavgAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    pinning,
    smoke: SMOKE,
  };
}

export function header(name, facts) {
  return (
    `${name} bench: node ${facts.node}, ${facts.cores} x ${facts.cpu}, load ${facts.loadavgAtStart.join(' ')}` +
    `\npinning: ${facts.pinning}${facts.smoke ? '\nSMOKE RUN (BENCH_SMOKE=1): figures are not shown in READMEs' : ''}`
  );
}

/**
 * One measured row. `impls` maps a key to { label, values: per-round numbers };
 * `comparisons` lists { ours, anchor } keys; the ratio is the median of per-round ours/anchor
 * (for `better: 'lower'` metrics too: a ratio below 1 then means ours is cheaper/faster).
 */
export function row({
  id,
  title,
  metric,
  unit,
  better = 'higher',
  headline = false,
  impls,
  comparisons,
  note,
}) {
  const out = { id, title, metric, unit, better, headline, impls: {}, comparisons: [] };
  for (const [key, { label, values }] of Object.entries(impls)) {
    out.impls[key] = { label, values, median: median(values) };
  }
  for (const { ours, anchor, target } of comparisons ?? []) {
    const a = out.impls[anchor].values;
    const ratios = out.impls[ours].values.map((v, i) => v / a[i]).filter(Number.isFinite);
    out.comparisons.push({
      ours,
      anchor,
      oursLabel: out.impls[ours].label,
      anchorLabel: out.impls[anchor].label,
      ratios,
      ratio: median(ratios),
      ...(target ? { target } : {}),
    });
  }
  if (note) out.note = note;
  return out;
}

/** Appends this run to bench/results.json (keeping the last HISTORY runs) and returns the path. */
export function writeResults(benchDir, pkg, facts, config, rows, extra = {}) {
  const path = join(benchDir, 'results.json');
  let runs = [];
  try {
    const old = JSON.parse(readFileSync(path, 'utf8'));
    // A measured run drops earlier smoke runs, so the history holds only real figures.
    if (Array.isArray(old.runs)) runs = SMOKE ? old.runs : old.runs.filter((r) => !r.smoke);
  } catch {}
  const run = { ...facts, finished: new Date().toISOString(), config, rows, ...extra };
  runs = [run, ...runs].slice(0, HISTORY);
  writeFileSync(path, `${JSON.stringify({ package: pkg, schema: 1, runs }, null, 2)}\n`);
  console.log(`\nwrote ${path} (${runs.length} run(s) kept)`);
  return path;
}

/** Prints a row's medians and ratios. */
export function printRow(
  r,
  fmt = (v) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2)),
) {
  console.log(
    `\n${r.headline ? '[headline] ' : ''}${r.title} — ${r.metric} (${r.unit}, ${r.better} is better)`,
  );
  for (const { label, values, median: m } of Object.values(r.impls)) {
    console.log(
      `  ${label.padEnd(34)} median ${fmt(m).padStart(10)}   rounds: ${values.map(fmt).join(', ')}`,
    );
  }
  for (const c of r.comparisons) {
    console.log(
      `  ratio ${c.oursLabel} / ${c.anchorLabel}: ${c.ratio.toFixed(3)}x${c.target ? ` (target ${c.target})` : ''}`,
    );
  }
}
