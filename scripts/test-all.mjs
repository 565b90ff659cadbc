#!/usr/bin/env node
// The whole test suite: build, package checks (publint + attw), typecheck, vitest in every
// workspace, then a plain summary from the vitest JSON reports: one line per group of skipped
// tests with its reason, and a closing line "N passed, M failed, K skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lookupPeer, PEER_PACKAGES } from '../test-support/peer-lookup.mjs';

const root = new URL('..', import.meta.url).pathname;
const extra = process.argv.slice(2);

const packages = [];
for (const group of ['packages', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir).sort()) {
    if (existsSync(join(dir, name, 'package.json')))
      packages.push({ id: `${group}/${name}`, dir: join(dir, name) });
  }
}

// A package whose tests did not run this time must not contribute an earlier run's passes.
for (const pkg of packages) rmSync(join(pkg.dir, 'test-results'), { recursive: true, force: true });

// Which peers this machine has, in the environment of the test tasks: turbo hashes it (turbo.json
// declares NET_PEERS_FOUND), so a cached result from a machine with Chromium is never replayed here.
const found = Object.keys(PEER_PACKAGES)
  .map((peer) => `${peer}=${lookupPeer(peer) ?? '-'}`)
  .join(' ');

const turbo = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', 'check', 'typecheck', 'test', '--continue', '--concurrency=2', ...extra],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NET_PEERS_FOUND: found } },
);

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The skips tests recorded with a reason (test-support/peers.ts writes test-results/skips/*.json). */
function recordedSkips(dir) {
  const skipsDir = join(dir, 'test-results', 'skips');
  if (!existsSync(skipsDir)) return [];
  return readdirSync(skipsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readJson(join(skipsDir, f)))
    .filter((s) => s && typeof s.title === 'string' && typeof s.reason === 'string');
}

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
const groups = new Map(); // reason -> count
for (const pkg of packages) {
  const result = readJson(join(pkg.dir, 'test-results', 'vitest.json'));
  if (result === undefined) {
    missing.push(pkg.id);
    continue;
  }
  passed += result.numPassedTests ?? 0;
  failed += (result.numFailedTests ?? 0) + (result.numRuntimeErrorTests ?? 0);
  if (result.success === false && (result.numFailedTests ?? 0) === 0) failed += 1; // suite-level error
  const skips = recordedSkips(pkg.dir);
  for (const file of result.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status === 'passed' || test.status === 'failed') continue;
      // skipped, pending, todo, disabled: all count as skipped
      skipped += 1;
      const titles = [...(test.ancestorTitles ?? []), test.title];
      const skip = skips.find((s) => titles.includes(s.title));
      const reason = skip
        ? skip.reason
        : `${test.status === 'todo' ? 'todo' : 'skipped'} with no recorded reason`;
      const key = `${pkg.id}\u0000${reason}`;
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
  }
}
if (missing.length > 0) {
  console.log(`no test report from: ${missing.join(', ')} (counted as failed)`);
  failed += missing.length;
}

console.log('');
for (const [key, count] of groups) {
  const [pkg, reason] = key.split('\u0000');
  // "redis-server not found; install …" reads as "redis-server not found: 17 tests; install …"
  const cut = reason.indexOf('; ');
  const tests = `${count} test${count === 1 ? '' : 's'}`;
  const line = cut === -1 ? `${reason}: ${tests}` : `${reason.slice(0, cut)}: ${tests}${reason.slice(cut)}`;
  console.log(`skipped in ${pkg}: ${line}`);
}
const exitCode = turbo.status === 0 && failed === 0 ? 0 : 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(exitCode);
