import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const dist = join(import.meta.dirname, '..', 'dist');

// One process loads both builds, as an application does when ESM code and a CommonJS dependency
// use the package: errors made by one build must pass `instanceof` checks written against the other.
const program = `
import { createRequire } from 'node:module';
const esm = await import(${JSON.stringify(join(dist, 'index.js'))});
const cjs = createRequire(import.meta.url)(${JSON.stringify(join(dist, 'index.cjs'))});
const fromCjs = new cjs.ProtocolError('bad');
const fromEsm = new esm.ProtocolError('bad');
console.log(JSON.stringify({
  distinctClasses: esm.ProtocolError !== cjs.ProtocolError,
  cjsErrorIsEsmSub: fromCjs instanceof esm.ProtocolError,
  cjsErrorIsEsmBase: fromCjs instanceof esm.WebSocketError,
  esmErrorIsCjsSub: fromEsm instanceof cjs.ProtocolError,
  esmErrorIsCjsBase: fromEsm instanceof cjs.WebSocketError,
  sameBuild: fromEsm instanceof esm.ProtocolError && fromEsm instanceof esm.WebSocketError && fromEsm instanceof Error,
  baseIsNotSub: new esm.WebSocketError('ERR_X','m') instanceof cjs.ProtocolError,
  plainErrorIsBase: new Error('x') instanceof esm.WebSocketError || new Error('x') instanceof cjs.WebSocketError,
  lookalikeIsBase: Object.assign(Object.create(Error.prototype), { code: fromEsm.code }) instanceof cjs.WebSocketError,
  code: fromCjs.code === fromEsm.code,
}));
`;

describe('errors across the ESM and CommonJS builds (dual-package hazard)', () => {
  it('passes instanceof for an error made by the other build, and only for the right class', async () => {
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', program], {
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({
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
    });
  });
});
