import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient, waitFor } from './helpers/clients.js';
import { CLIENT_JS, DEMO_DIR, type RunningServer, startServer, tempDir } from './helpers/server.js';

let server: RunningServer;
let browser: Browser;
const results = join(DEMO_DIR, 'test-results');
const dialogs: string[] = [];

async function openPage(nick: string, width = 1000): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 700 } });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(server.urls.http!);
  await page.waitForSelector('#status.online', { timeout: 15_000 });
  await say(page, `/nick ${nick}`);
  await page.waitForFunction((n) => document.getElementById('nick')?.textContent === n, nick, {
    timeout: 15_000,
  });
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

function texts(page: Page): Promise<string[]> {
  return page.$$eval('#messages li.msg .text', (els) => els.map((e) => e.textContent ?? ''));
}

async function waitText(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li.msg .text')].some((e) => e.textContent === t),
    text,
    { timeout: 15_000 },
  );
}

describeWithPeers(['chromium'], 'the web client in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(results, { recursive: true });
    server = await startServer();
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
  });

  describe('browser, TCP and terminal users in one room', () => {
    let ann: Page;
    let ben: Page;
    let tcp: TcpTestClient;

    it('delivers each message to the two other users', async () => {
      ann = await openPage('ann');
      ben = await openPage('ben', 360);
      tcp = await TcpTestClient.open(server.port('tcp'), 'tcpuser');

      await say(ann, 'hi from ann');
      await waitText(ben, 'hi from ann');
      await tcp.waitLine(/^\[lobby\] <ann> hi from ann$/);

      await say(ben, 'hi from ben');
      await waitText(ann, 'hi from ben');
      await tcp.waitLine(/^\[lobby\] <ben> hi from ben$/);

      tcp.send('hi from tcp');
      await waitText(ann, 'hi from tcp');
      await waitText(ben, 'hi from tcp');
      // Member list shows everyone in the room.
      await ann.waitForFunction(
        () =>
          ['ann', 'ben', 'tcpuser'].every((n) =>
            [...document.querySelectorAll('#members li')].some((li) => li.textContent === n),
          ),
        undefined,
        { timeout: 15_000 },
      );
    });

    it('renders an XSS attempt as text', async () => {
      const evil = '<img src=x onerror=alert(1)>';
      await say(ben, evil);
      await waitText(ann, evil);
      expect(await ann.$$eval('#messages img', (els) => els.length)).toBe(0);
      await tcp.waitLine(/<ben> <img src=x onerror=alert\(1\)>$/);
      await ann.waitForTimeout(300);
      expect(dialogs).toEqual([]);
    });

    it('resumes after a reload without duplicates or gaps', async () => {
      const before = await texts(ann);
      await ann.reload();
      // Sent while the page is reconnecting: must show up exactly once.
      tcp.send('while you were away');
      await ann.waitForSelector('#status.online', { timeout: 15_000 });
      await waitText(ann, 'while you were away');
      await say(ben, 'after reload');
      await waitText(ann, 'after reload');
      const after = await texts(ann);
      expect(after).toEqual([...before, 'while you were away', 'after reload']);
      const ids = await ann.$$eval('#messages li.msg', (els) =>
        els.map((e) => (e as HTMLElement).dataset.id),
      );
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('shows typing indicators and works at 360 px width', async () => {
      await ann.type('#input', 'typing something', { delay: 20 });
      await ben.waitForFunction(
        () => /ann is typing/.test(document.getElementById('typing')?.textContent ?? ''),
        undefined,
        {
          timeout: 15_000,
        },
      );
      const overflow = await ben.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      expect(overflow).toBe(false);
      await ben.screenshot({ path: join(results, 'chat-360px.png') });
      await ann.fill('#input', '');
      await ann.screenshot({ path: join(results, 'chat-desktop.png') });
      if (process.env.UPDATE_SCREENSHOT)
        await ann.screenshot({ path: join(DEMO_DIR, 'docs/screenshot.png') });
    });

    it('lets a terminal client discover the server over UDP and chat with the browser', async () => {
      let out = '';
      const cli: ChildProcess = spawn(
        process.execPath,
        [
          CLIENT_JS,
          '--discovery-host',
          '127.0.0.1',
          '--discovery-port',
          String(server.port('udp')),
          '--nick',
          'term',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
      );
      cli.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      cli.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
      try {
        await waitFor('cli joined', () => /you joined #lobby/.test(out), 20_000);
        // Several servers on one machine: DNS-SD renames the later ones `net-chat/0.1.0 (2)`, …
        expect(out).toMatch(/found net-chat\/[\d.]+( \(\d+\))? at ws:\/\/127\.0\.0\.1:\d+\/ws/);
        cli.stdin!.write('hello from the terminal\n');
        await waitText(ben, 'hello from the terminal');
        await say(ben, 'hello terminal');
        await waitFor('cli got message', () => out.includes('[lobby] <ben> hello terminal'));
        cli.stdin!.write('/quit\n');
        const code = await new Promise<number | null>((r) => cli.once('exit', (c) => r(c)));
        expect(code).toBe(0);
      } finally {
        cli.kill('SIGKILL');
      }
    });
  });

  describe('browser outbox', () => {
    it('sends a message typed while the server is down once it is back, exactly once', async () => {
      const dataDir = tempDir('chat-browser-outbox-');
      const first = await startServer({ dataDir });
      const httpPort = first.port('http');
      let second: RunningServer | undefined;
      const page = await browser.newPage();
      try {
        await page.goto(first.urls.http!);
        await page.waitForSelector('#status.online', { timeout: 15_000 });
        expect(await first.stop('SIGTERM')).toBe(0);
        await page.waitForSelector('#status.offline', { timeout: 15_000 });
        await say(page, 'typed while offline');
        // Same data directory and HTTP port: the page reconnects by itself.
        second = await startServer({ dataDir, args: ['--http-port', String(httpPort)] });
        await page.waitForSelector('#status.online', { timeout: 30_000 });
        await waitText(page, 'typed while offline');
        const res = await fetch(`${second.urls.http}/api/rooms/lobby/messages?limit=100`);
        const { messages } = (await res.json()) as { messages: { text: string }[] };
        expect(messages.filter((m) => m.text === 'typed while offline')).toHaveLength(1);
        expect(await texts(page)).toEqual(['typed while offline']);
        expect(await page.getAttribute('#input', 'placeholder')).not.toMatch(/sending/);
      } finally {
        await page.close();
        await first.stop('SIGKILL');
        await second?.stop('SIGKILL');
      }
    }, 90_000);
  });
});
