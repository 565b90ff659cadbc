import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The server and the terminal client: ESM for Node, runnable as bins.
    entry: { server: 'src/server.ts', 'client/cli': 'src/client/cli.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    // The web page: one browser bundle next to the static files from public/.
    entry: { app: 'src/client/web/app.ts' },
    outDir: 'dist/public',
    format: ['esm'],
    sourcemap: true,
    target: 'es2022',
    platform: 'browser',
    minify: true,
    publicDir: 'public',
  },
]);
