#!/usr/bin/env node
// `pnpm fuzz`: every parser's property tests (those declared with itFuzz in test-support/fuzz.ts)
// with a large budget, FUZZ_RUNS inputs per property (default 100,000). Prints how long it took.
// Failures are saved to each package's test/fuzz-corpus/ and replayed by `pnpm test`.
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const runs = process.env.FUZZ_RUNS ?? '100000';
const started = Date.now();
const turbo = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'fuzz', '--concurrency=1', '--continue', ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, FUZZ_RUNS: runs } },
);
const seconds = Math.round((Date.now() - started) / 1000);
console.log('');
console.log(
  `fuzz: FUZZ_RUNS=${runs} per property, ${seconds} s, ${turbo.status === 0 ? 'no failures' : 'FAILURES (see above; counterexamples saved under test/fuzz-corpus/)'}`,
);
process.exit(turbo.status ?? 1);
