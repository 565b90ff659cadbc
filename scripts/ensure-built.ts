import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * vitest globalSetup: some suites run the built package (examples, ESM/CJS loading, the demo's
 * child processes), so `pnpm --filter <pkg> test` on a fresh clone builds the package and its
 * workspace dependencies first. Under the root `pnpm test` everything is built already and this
 * costs one existsSync.
 */
export default function ensureBuilt(): void {
  const dir = process.cwd();
  if (existsSync(join(dir, 'dist'))) return;
  const { name } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string };
  const result = spawnSync(
    'pnpm',
    ['exec', 'turbo', 'run', 'build', `--filter=${name}...`, '--output-logs=errors-only'],
    {
      cwd: dir,
      stdio: 'inherit',
    },
  );
  if (result.status !== 0) throw new Error(`building ${name} before its tests failed`);
}
