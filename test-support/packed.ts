/**
 * What a user meets first: the package packed as it would be published, installed alone in a
 * directory outside the workspace, and the README's first example run as ESM and as CommonJS.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The first ```js block of a README. */
export function firstExample(readme: string): string {
  const match = /^```js\n([\s\S]*?)^```$/m.exec(readme);
  if (!match?.[1]) throw new Error('README has no ```js example');
  return match[1];
}

/** The same example as a CommonJS script: imports become requires, top-level await is wrapped. */
export function toCommonJs(esm: string): string {
  const body = esm.replace(/^import\s+(.+?)\s+from\s+('[^']+');$/gm, (_line, what: string, from: string) => {
    const binding = what.trim().startsWith('{') ? what.replace(/\s+as\s+/g, ': ') : what;
    return `const ${binding} = require(${from});`;
  });
  const requires = body.split('\n').filter((l) => l.startsWith('const ') && l.includes('require('));
  const rest = body.split('\n').filter((l) => !(l.startsWith('const ') && l.includes('require(')));
  return `${requires.join('\n')}\n(async () => {\n${rest.join('\n')}\n})().catch((err) => {\n  console.error(err);\n  process.exit(1);\n});\n`;
}

export interface PackedRun {
  esm: { stdout: string; stderr: string };
  cjs: { stdout: string; stderr: string };
  tarball: string;
  tarballBytes: number;
}

/** Packs the package at `pkgDir`, installs it in a fresh directory and runs its README example. */
export async function runPackedExample(pkgDir: string, packageName: string): Promise<PackedRun> {
  const work = await mkdtemp(join(tmpdir(), 'net-packed-'));
  try {
    await exec('pnpm', ['pack', '--pack-destination', work], { cwd: pkgDir, timeout: 120_000 });
    const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('pnpm pack produced no tarball');
    const app = join(work, 'app');
    await exec('mkdir', ['-p', app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    await exec('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', join(work, tarball)], {
      cwd: app,
      timeout: 120_000,
    });
    const example = firstExample(await readFile(join(pkgDir, 'README.md'), 'utf8'));
    if (!example.includes(packageName)) throw new Error(`the README example does not import ${packageName}`);
    await writeFile(join(app, 'example.mjs'), example);
    await writeFile(join(app, 'example.cjs'), toCommonJs(example));
    const run = (file: string) => exec(process.execPath, [file], { cwd: app, timeout: 60_000 });
    const esm = await run('example.mjs');
    const cjs = await run('example.cjs');
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(join(work, tarball)));
    return { esm, cjs, tarball, tarballBytes: size };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
