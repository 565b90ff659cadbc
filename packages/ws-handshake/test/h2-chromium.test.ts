import { createHash, X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { type WebSocket as NetWebSocket, WebSocketServer } from '../src/index.js';
import { makeCert } from './h2-helpers.js';

// Chromium loads a page over https with HTTP/2 and opens a WebSocket to the same origin: with
// SETTINGS_ENABLE_CONNECT_PROTOCOL advertised it uses RFC 8441, so the WebSocket must arrive as
// an extended CONNECT stream on the very session that served the page.

describeWithPeers(['chromium'], 'Chromium over HTTP/2 (RFC 8441)', () => {
  let browser: Browser;
  let server: http2.Http2SecureServer;
  let port: number;
  const pageSessions: http2.Http2Session[] = [];
  const accepted: NetWebSocket[] = [];
  const wsSessions: Array<http2.Http2Session | undefined> = [];
  const wss = new WebSocketServer({ heartbeatInterval: 0 });

  beforeAll(async () => {
    const tls = makeCert();
    server = http2.createSecureServer({ ...tls, settings: { enableConnectProtocol: true } });
    server.on('stream', (stream, headers) => {
      if (headers[':method'] !== 'GET') return;
      if (stream.session !== undefined) pageSessions.push(stream.session);
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<!doctype html><title>h2</title>');
    });
    wss.attachH2(server);
    wss.on('connection', (ws, req) => {
      accepted.push(ws);
      // The H2UpgradeRequest view carries the stream (its session is gone once the stream closes).
      wsSessions.push((req as unknown as { stream: http2.ServerHttp2Stream }).stream.session);
      ws.on('message', (d) => ws.send(`h2 echo: ${d}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    const spki = createHash('sha256')
      .update(new X509Certificate(tls.cert).publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64');
    browser = await chromium.launch({
      executablePath: peerPath('chromium'),
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
        `--ignore-certificate-errors-spki-list=${spki}`,
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('opens the WebSocket as a stream of the page’s HTTP/2 session', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`https://localhost:${port}/`);
    expect(response?.status()).toBe(200);
    const reply = await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('ws error'));
      });
      const got = new Promise<string>((resolve) => {
        ws.onmessage = (e) => resolve(String(e.data));
      });
      ws.send('hi');
      const text = await got;
      ws.close(1000);
      return text;
    }, `wss://localhost:${port}/ws`);
    expect(reply).toBe('h2 echo: hi');
    expect(accepted.length).toBe(1);
    const ws = accepted[0]!;
    expect(ws.transport).toBe('h2');
    expect(wsSessions[0]).toBeDefined();
    expect(pageSessions).toContain(wsSessions[0]);
    await page.close();
  });
});
