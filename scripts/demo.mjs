#!/usr/bin/env node
// `pnpm demo` / `pnpm demo:client`: build what the demo needs (saying so, since a first build takes
// about a minute), then run the server or the terminal client in this process's place. Ctrl-C
// reaches the demo, which shuts down cleanly; a clean stop exits 0 without a package-manager error.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const client = process.argv[2] === '--client';
const args = process.argv.slice(client ? 3 : 2).filter((a, i) => !(i === 0 && a === '--'));

process.stderr.write('building the packages and the demo (the first build takes about a minute)…\n');
const started = Date.now();
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=demo...', '--output-logs=errors-only', '--log-prefix=none'],
  { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
);
if (build.status !== 0) {
  process.stderr.write('build failed (see above)\n');
  process.exit(build.status ?? 1);
}
process.stderr.write(`built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

const entry = client ? 'apps/demo/dist/client/cli.js' : 'apps/demo/dist/server.js';
const child = spawn(process.execPath, [entry, ...args], { cwd: root, stdio: 'inherit' });
// The terminal sends Ctrl-C to the whole process group, so the demo gets it too and shuts down:
// this process only waits for it. A SIGTERM sent to this process alone is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 0 : 1)));
