import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spkiPin } from '@net/security';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient, waitFor } from './helpers/clients.js';
import { seen } from './helpers/h2-log.js';
import { type RunningServer, startServer } from './helpers/server.js';

// Issue 14: Chromium loads the page over https:// with HTTP/2 and, since the server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL, opens the chat's WebSocket as an RFC 8441 stream of that same
// connection. The server's debug log says, per request and per WebSocket, the protocol and the
// client's port: one TLS connection means one port for all of them.

describeWithPeers(['chromium'], 'Chromium on the HTTPS port over HTTP/2', () => {
  let server: RunningServer;
  let browser: Browser;
  let plain: TcpTestClient;
  beforeAll(async () => {
    server = await startServer({ args: ['--tls', '--log-level', 'debug'] });
    plain = await TcpTestClient.open(server.port('tcp'), 'plain');
    const leaf = readFileSync(join(server.dataDir, 'ca', 'server.pem'), 'utf8');
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiPin(leaf)}`]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await plain?.close();
    await server?.stop('SIGKILL');
  });

  it('loads the page, calls the API and chats over one h2 connection', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.urls.https!}/`);
    await page.waitForSelector('#status.online', { timeout: 15_000 });
    // The browser's own account of the page load.
    const protocol = await page.evaluate(
      () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
    );
    expect(protocol).toBe('h2');
    await page.fill('#input', 'hello over one h2 connection');
    await page.press('#input', 'Enter');
    await plain.waitLine(/<guest\d+> hello over one h2 connection$/);
    // An API call from the page, as a script on it would make.
    const status = await page.evaluate(async () => (await fetch('/api/rooms')).status);
    expect(status).toBe(200);

    await waitFor('the WebSocket in the log', () => seen(server).sockets.length > 0);
    const { requests, sockets } = seen(server);
    expect(sockets).toHaveLength(1);
    const ws = sockets[0]!;
    expect(ws.transport).toBe('h2');
    const pageLoad = requests.find((r) => r.method === 'GET' && r.path === '/');
    expect(pageLoad).toMatchObject({ version: '2.0', port: ws.port });
    expect(requests.find((r) => r.path === '/api/rooms')).toMatchObject({ version: '2.0', port: ws.port });
    // Nothing of this page went over another connection or HTTP/1.1.
    expect(requests.filter((r) => r.port !== ws.port || r.version !== '2.0')).toEqual([]);
    await page.close();
  });
});
