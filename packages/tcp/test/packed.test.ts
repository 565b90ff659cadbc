import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPackedExample } from '../../../test-support/packed.js';

describe('the packed package, installed alone', () => {
  it('runs the README example as ESM and as CommonJS', async () => {
    const run = await runPackedExample(join(import.meta.dirname, '..'), '@net/tcp');
    for (const out of [run.esm.stdout, run.cjs.stdout]) {
      expect(out).toBe('welcome! type something\necho: hello, 世界\n');
    }
    // The README promises this budget (source maps included, sources not embedded).
    expect(run.tarballBytes).toBeLessThan(250 * 1024);
  }, 240_000);
});
