import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS_ACROSS_BUILDS, errorsAcrossBuilds } from '../../../test-support/dual-package.js';

describe('errors across the ESM and CommonJS builds (dual-package hazard)', () => {
  it('passes instanceof for an error made by the other build, and only for the right class', async () => {
    const results = await errorsAcrossBuilds(join(import.meta.dirname, '..'), {
      base: 'TcpError',
      baseArgs: "'ERR_X','m'",
      sub: 'FrameTooLargeError',
      subArgs: '10,5',
      // A Frame is branded the same way: it crosses builds too.
      extra: `frameAcrossBuilds: new cjs.Frame([]) instanceof esm.Frame && new esm.Frame([]) instanceof cjs.Frame,
  bufferIsNotFrame: Buffer.alloc(1) instanceof esm.Frame || {} instanceof cjs.Frame,
  frameStreamAcrossBuilds: new cjs.FrameStream(1, () => {}, () => {}) instanceof esm.FrameStream && new esm.FrameStream(1, () => {}, () => {}) instanceof cjs.FrameStream,
  bufferIsNotFrameStream: Buffer.alloc(1) instanceof esm.FrameStream || new esm.Frame([]) instanceof cjs.FrameStream,
  cjsFrameEncodedByEsm: Buffer.concat([new esm.LengthPrefixedCodec().encode(new cjs.Frame([Buffer.from('hi')]))].flat()).toString('hex'),`,
    });
    expect(results).toEqual({
      ...ERRORS_ACROSS_BUILDS,
      frameAcrossBuilds: true,
      bufferIsNotFrame: false,
      frameStreamAcrossBuilds: true,
      bufferIsNotFrameStream: false,
      cjsFrameEncodedByEsm: '000000026869',
    });
  });
});
