/**
 * The dual-package hazard, checked the way an application meets it: one process loads a package's
 * ESM and CommonJS builds (ESM code next to a CommonJS dependency), and errors made by one build
 * must pass `instanceof` checks written against the other, and only for the right class.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface ErrorClasses {
  /** The package's base error class, e.g. `TcpError`, and constructor arguments for it. */
  base: string;
  baseArgs: string;
  /** A subclass, e.g. `FrameTooLargeError`, and its constructor arguments (JavaScript source). */
  sub: string;
  subArgs: string;
  /** More `key: expression,` lines evaluated with `esm` and `cjs` in scope. */
  extra?: string;
}

/** What every package's builds must report (plus whatever `extra` adds). */
export const ERRORS_ACROSS_BUILDS = {
  distinctClasses: true,
  cjsErrorIsEsmSub: true,
  cjsErrorIsEsmBase: true,
  esmErrorIsCjsSub: true,
  esmErrorIsCjsBase: true,
  sameBuild: true,
  baseIsNotSub: false,
  plainErrorIsBase: false,
  lookalikeIsBase: false,
  code: true,
} as const;

/** Runs the checks in a fresh node process against `<packageDir>/dist`; returns their results. */
export async function errorsAcrossBuilds(
  packageDir: string,
  c: ErrorClasses,
): Promise<Record<string, unknown>> {
  const dist = join(packageDir, 'dist');
  const program = `
import { createRequire } from 'node:module';
const esm = await import(${JSON.stringify(join(dist, 'index.js'))});
const cjs = createRequire(import.meta.url)(${JSON.stringify(join(dist, 'index.cjs'))});
const fromCjs = new cjs.${c.sub}(${c.subArgs});
const fromEsm = new esm.${c.sub}(${c.subArgs});
console.log(JSON.stringify({
  distinctClasses: esm.${c.sub} !== cjs.${c.sub},
  cjsErrorIsEsmSub: fromCjs instanceof esm.${c.sub},
  cjsErrorIsEsmBase: fromCjs instanceof esm.${c.base},
  esmErrorIsCjsSub: fromEsm instanceof cjs.${c.sub},
  esmErrorIsCjsBase: fromEsm instanceof cjs.${c.base},
  sameBuild: fromEsm instanceof esm.${c.sub} && fromEsm instanceof esm.${c.base} && fromEsm instanceof Error,
  baseIsNotSub: new esm.${c.base}(${c.baseArgs}) instanceof cjs.${c.sub},
  plainErrorIsBase: new Error('x') instanceof esm.${c.base} || new Error('x') instanceof cjs.${c.base},
  lookalikeIsBase: Object.assign(Object.create(Error.prototype), { code: fromEsm.code }) instanceof cjs.${c.base},
  code: fromCjs.code === fromEsm.code,
  ${c.extra ?? ''}
}));
`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', program], {
    timeout: 30_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}
