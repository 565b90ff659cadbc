import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { WebSocketServer } from '../src/index.js';

// Chromium's own WebSocket implementation against our server, with and without deflate.

describeWithPeers(['chromium'], 'Chromium interop', () => {
  let browser: Browser;
  let http: Server;
  let port: number;
  const wss = new WebSocketServer({
    heartbeatInterval: 0,
    perMessageDeflate: { threshold: 16 },
    maxPayload: 8 * 1024 * 1024,
    allowedOrigins: (origin) => origin === `http://127.0.0.1:${port}`,
  });
  const lastClose: Array<[number, string]> = [];
  // What the server wrote back on each upgrade request, by Origin: a browser only reports 1006 for
  // a refused handshake, so the status line is read where it is written, on the real socket.
  const responses: Array<{ origin: string | undefined; head: string }> = [];

  beforeAll(async () => {
    http = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>ws</title>');
    });
    http.on('upgrade', (req, socket, head) => {
      const seen = { origin: req.headers.origin, head: '' };
      responses.push(seen);
      const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
      const end = socket.end.bind(socket) as (chunk?: unknown, ...rest: unknown[]) => typeof socket;
      const note = (chunk: unknown) => {
        if (seen.head === '' && (typeof chunk === 'string' || Buffer.isBuffer(chunk)))
          seen.head = String(chunk).split('\r\n')[0] ?? '';
      };
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        note(chunk);
        return write(chunk, ...rest);
      }) as typeof socket.write;
      socket.end = ((chunk?: unknown, ...rest: unknown[]) => {
        note(chunk);
        return end(chunk, ...rest);
      }) as typeof socket.end;
      void wss.handleUpgrade(req, socket, head);
    });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        if (data === 'close-me') void ws.close(4321, 'as requested');
        else void ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) => lastClose.push([code, reason]));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    port = (http.address() as AddressInfo).port;
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
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await wss.close();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  it('exchanges text, binary and large messages with permessage-deflate, then closes cleanly', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const result = await page.evaluate(async (url) => {
      const ws = new WebSocket(url, ['chat']);
      ws.binaryType = 'arraybuffer';
      const messages: Array<string | number[] | number> = [];
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('ws error'));
      });
      const next = () =>
        new Promise<MessageEvent>((resolve) => ws.addEventListener('message', resolve, { once: true }));
      let p = next();
      ws.send('hello from chromium ✓');
      messages.push((await p).data as string);
      p = next();
      ws.send(new Uint8Array([1, 2, 3, 255]));
      messages.push([...new Uint8Array((await p).data as ArrayBuffer)]);
      const large = 'x'.repeat(2 * 1024 * 1024) + 'end';
      p = next();
      ws.send(large);
      const echoed = (await p).data as string;
      messages.push(echoed === large ? echoed.length : -1);
      const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) => {
        ws.onclose = resolve;
      });
      ws.send('close-me');
      const ev = await closed;
      return {
        extensions: ws.extensions,
        protocol: ws.protocol,
        messages,
        code: ev.code,
        reason: ev.reason,
        clean: ev.wasClean,
      };
    }, `ws://127.0.0.1:${port}/chat`);
    expect(result.extensions).toMatch(/^permessage-deflate/);
    expect(result.protocol).toBe('chat');
    expect(result.messages).toEqual(['hello from chromium ✓', [1, 2, 3, 255], 2 * 1024 * 1024 + 3]);
    expect(result).toMatchObject({ code: 4321, reason: 'as requested', clean: true });
    await page.close();
  });

  it('reports the code Chromium closes with', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const before = lastClose.length;
    await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      await new Promise((resolve) => {
        ws.onopen = resolve;
      });
      const closed = new Promise((resolve) => {
        ws.onclose = resolve;
      });
      ws.close(3001, 'tab closing');
      await closed;
    }, `ws://127.0.0.1:${port}/`);
    const deadline = Date.now() + 10_000;
    while (lastClose.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lastClose.at(-1)).toEqual([3001, 'tab closing']);
    await page.close();
  });

  it('is refused with 403 from a foreign origin', async () => {
    // A page from another origin (same host, another port) opens the WebSocket.
    const foreign = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`);
    foreign.closeAllConnections();
    await new Promise((r) => foreign.close(r));
    const before = responses.length;
    const outcome = await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      return new Promise<string>((resolve) => {
        ws.onopen = () => resolve('open');
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      });
    }, `ws://127.0.0.1:${port}/`);
    expect(outcome).toBe('closed 1006');
    // The refusal is the server's Origin check, not a network failure: one upgrade arrived, from
    // an origin other than the allowed one, and the server answered it with 403.
    await expect.poll(() => responses.length - before, { timeout: 5000 }).toBe(1);
    const refused = responses.at(-1)!;
    expect(refused.origin).not.toBe(`http://127.0.0.1:${port}`);
    expect(refused.head).toBe('HTTP/1.1 403 Forbidden');
    await page.close();
  });
});
