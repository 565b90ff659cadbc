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
const fromCjs = new cjs.FrameTooLargeError(10,5);
const fromEsm = new esm.FrameTooLargeError(10,5);
console.log(JSON.stringify({
  distinctClasses: esm.FrameTooLargeError !== cjs.FrameTooLargeError,
  cjsErrorIsEsmSub: fromCjs instanceof esm.FrameTooLargeError,
  cjsErrorIsEsmBase: fromCjs instanceof esm.TcpError,
  esmErrorIsCjsSub: fromEsm instanceof cjs.FrameTooLargeError,
  esmErrorIsCjsBase: fromEsm instanceof cjs.TcpError,
  sameBuild: fromEsm instanceof esm.FrameTooLargeError && fromEsm instanceof esm.TcpError && fromEsm instanceof Error,
  baseIsNotSub: new esm.TcpError('ERR_X','m') instanceof cjs.FrameTooLargeError,
  plainErrorIsBase: new Error('x') instanceof esm.TcpError || new Error('x') instanceof cjs.TcpError,
  lookalikeIsBase: Object.assign(Object.create(Error.prototype), { code: fromEsm.code }) instanceof cjs.TcpError,
  code: fromCjs.code === fromEsm.code,
  frameAcrossBuilds: new cjs.Frame([]) instanceof esm.Frame && new esm.Frame([]) instanceof cjs.Frame,
  bufferIsNotFrame: Buffer.alloc(1) instanceof esm.Frame || {} instanceof cjs.Frame,
  cjsFrameEncodedByEsm: Buffer.concat([new esm.LengthPrefixedCodec().encode(new cjs.Frame([Buffer.from('hi')]))].flat()).toString('hex'),
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
      frameAcrossBuilds: true,
      bufferIsNotFrame: false,
      cjsFrameEncodedByEsm: '000000026869',
    });
  });
});
