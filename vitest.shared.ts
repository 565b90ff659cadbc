import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The one vitest configuration every package extends. The JSON report is what
 * scripts/test-all.mjs adds up into the final "N passed, M failed" line.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: [fileURLToPath(new URL('./scripts/ensure-built.ts', import.meta.url))],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Network tests on a 2-core machine: forks isolate sockets and keep timers honest.
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
