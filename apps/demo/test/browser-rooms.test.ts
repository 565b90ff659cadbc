import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { describeWithPeers, itWithPeers, peerPath } from '../../../test-support/peers.js';
import { CHROMIUM_ARGS } from './helpers/browser.js';
import { TcpTestClient } from './helpers/clients.js';
import { type RunningServer, startServer } from './helpers/server.js';

// Issue 16, "Web page": room names that are Object.prototype keys must not break the page.
describeWithPeers(['chromium'], 'web page with rooms named like Object.prototype keys', () => {
  let server: RunningServer;
  let browser: Browser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServer();
    browser = await chromium.launch({
      executablePath: peerPath('chromium'),
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
  });

  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  async function waitText(page: Page, text: string): Promise<void> {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll('#messages li.msg .text')].some((e) => e.textContent === t),
      text,
      { timeout: 15_000 },
    );
  }

  itWithPeers(
    ['chromium'],
    'joins __proto__ and constructor, chats in them, and survives a reload',
    async () => {
      const page = await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(server.urls.http!);
      await page.waitForSelector('#status.online', { timeout: 15_000 });
      const tcp = await TcpTestClient.open(server.port('tcp'), 'watcher');
      for (const room of ['__proto__', 'constructor', 'hasownproperty']) {
        tcp.send(`/join ${room}`);
        await tcp.waitLine(new RegExp(`you joined #${room}`));
        await say(page, `/join ${room}`);
        await page.waitForFunction(
          (r) => document.getElementById('room-title')?.textContent === `#${r}`,
          room,
        );
        await say(page, `hello ${room}`);
        await tcp.waitLine(new RegExp(`^\\[${room}\\] <guest\\d+> hello ${room}$`));
        await waitText(page, `hello ${room}`);
        tcp.send(`from tcp in ${room}`);
        await waitText(page, `from tcp in ${room}`);
      }
      // The room list shows them, and the saved state survives a reload.
      await page.waitForFunction(() =>
        ['__proto__', 'constructor'].every((r) =>
          [...document.querySelectorAll('#rooms li')].some((li) => (li as HTMLElement).dataset.room === r),
        ),
      );
      await page.reload();
      await page.waitForSelector('#status.online', { timeout: 15_000 });
      await waitText(page, 'from tcp in hasownproperty');
      await say(page, '/join __proto__');
      await waitText(page, 'from tcp in __proto__');
      expect(pageErrors).toEqual([]);
      expect(await page.evaluate(() => Object.hasOwn(Object.prototype, 'messages'))).toBe(false);
      await tcp.close();
      await page.close();
    },
  );
});
