#!/usr/bin/env node
// The whole test suite: build, package checks (publint + attw), typecheck, vitest in every
// workspace, then one plain summary line "N passed, M failed" from the vitest JSON reports.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const extra = process.argv.slice(2);
const turbo = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', 'check', 'typecheck', 'test', '--continue', '--concurrency=2', ...extra],
  { cwd: root, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
const missing = [];
for (const group of ['packages', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const pkgDir = join(dir, name);
    if (!existsSync(join(pkgDir, 'package.json'))) continue;
    const report = join(pkgDir, 'test-results', 'vitest.json');
    if (!existsSync(report)) {
      missing.push(`${group}/${name}`);
      continue;
    }
    const result = JSON.parse(readFileSync(report, 'utf8'));
    passed += result.numPassedTests ?? 0;
    failed += (result.numFailedTests ?? 0) + (result.numRuntimeErrorTests ?? 0);
    if (result.success === false && (result.numFailedTests ?? 0) === 0) failed += 1; // suite-level error
  }
}
if (missing.length > 0) {
  console.log(`no test report from: ${missing.join(', ')} (counted as failed)`);
  failed += missing.length;
}
const exitCode = turbo.status === 0 && failed === 0 ? 0 : 1;
console.log('');
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
