import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.js';

// The examples import '@net/udp' like users do; in tests that name resolves to the sources.
export default mergeConfig(sharedTestConfig, {
  resolve: { alias: { '@net/udp': fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
});
