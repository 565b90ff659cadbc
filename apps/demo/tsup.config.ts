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
    // Bundled, @net packages included: dist/ runs on its own (no workspace dist/ needed at run
    // time) and a rebuild of a package cannot pull the floor from under a running server.
    noExternal: [/.*/],
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
    },
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
