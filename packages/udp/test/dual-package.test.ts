import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS_ACROSS_BUILDS, errorsAcrossBuilds } from '../../../test-support/dual-package.js';

describe('errors across the ESM and CommonJS builds (dual-package hazard)', () => {
  it('passes instanceof for an error made by the other build, and only for the right class', async () => {
    const results = await errorsAcrossBuilds(join(import.meta.dirname, '..'), {
      base: 'UdpError',
      baseArgs: "'ERR_X','m'",
      sub: 'InvalidArgumentError',
      subArgs: "'bad'",
    });
    expect(results).toEqual(ERRORS_ACROSS_BUILDS);
  });
});
