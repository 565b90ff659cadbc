import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';

describe('the API reference at /docs/', () => {
  let server: RunningServer;
  const docs = tempDir('chat-docs-');

  beforeAll(async () => {
    // What `pnpm docs` writes: a static site with an index page.
    mkdirSync(join(docs, 'assets'));
    writeFileSync(join(docs, 'index.html'), '<!doctype html><title>@net API reference</title>');
    writeFileSync(join(docs, 'assets', 'style.css'), 'body{}');
    server = await startServer({ env: { CHAT_DOCS_DIR: docs } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  it('serves the built site under /docs/ and redirects /docs there', async () => {
    const base = server.urls.http!;
    const index = await fetch(`${base}/docs/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('@net API reference');
    expect((await fetch(`${base}/docs/assets/style.css`)).headers.get('content-type')).toMatch(/text\/css/);
    const bare = await fetch(`${base}/docs`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/docs/');
    expect((await fetch(`${base}/docs/../server.js`)).status).toBeGreaterThanOrEqual(400);
  });

  it('is absent when the site was not built', async () => {
    const plain = await startServer({ env: { CHAT_DOCS_DIR: join(docs, 'missing') } });
    try {
      const res = await fetch(`${plain.urls.http!}/docs/`);
      expect(res.status).toBe(404);
    } finally {
      await plain.stop('SIGKILL');
    }
  });
});

describe('the page assets', () => {
  it('serves /favicon.ico as an icon (browsers ask for it on every first visit)', async () => {
    const server = await startServer();
    try {
      const res = await fetch(`${server.urls.http!}/favicon.ico`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/icon/);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0])); // ICO header
    } finally {
      await server.stop('SIGKILL');
    }
  });
});
