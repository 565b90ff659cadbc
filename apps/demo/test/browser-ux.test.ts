import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { COMMANDS } from '../src/protocol/commands.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient } from './helpers/clients.js';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';

describeWithPeers(['chromium'], 'the web page as a new user meets it', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let watcher: TcpTestClient;
  const dataDir = tempDir('chat-ux-');

  beforeAll(async () => {
    server = await startServer({ dataDir });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(server.urls.http!);
    await page.waitForSelector('#status.online', { timeout: 15_000 });
    watcher = await TcpTestClient.open(server.port('tcp'), 'watcher');
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
  });

  async function type(text: string): Promise<void> {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  it('answers an unknown command like netcat does instead of posting it', async () => {
    await type('/bogus');
    const note = page.locator('#messages li.error').last();
    await expect.poll(() => note.textContent()).toMatch(/Unknown command: type \/help/);
    expect(await note.getAttribute('title')).toMatch(/^UNKNOWN_COMMAND/);
    await type('a real message');
    await watcher.waitLine(/<guest\d+> a real message$/);
    // The unknown command never reached the room.
    expect(watcher.lines.some((l) => l.includes('/bogus'))).toBe(false);
    await type('/help');
    await expect.poll(() => page.locator('#messages').textContent()).toMatch(/\/join ROOM/);
  });

  it('runs every command of the shared table, and refuses bad ones like netcat does', async () => {
    const bob = await TcpTestClient.open(server.port('tcp'), 'bob'); // for `/msg bob hi`
    const errors = page.locator('#messages li.error');
    // All but those that change the page's identity or connection, or need an account (tested in
    // browser-private-rooms and the accounts tests).
    const elsewhere = ['quit', 'nick', 'register', 'login', 'logout', 'password', 'create', 'invite', 'kick'];
    for (const c of COMMANDS.filter((c) => !elsewhere.includes(c.name))) await type(c.example);
    await expect.poll(() => page.locator('#messages').textContent()).toMatch(/ack c-1 \d+-\d+/);
    await expect.poll(() => page.locator('#messages').textContent()).toMatch(/token for guest\d+: /);
    await expect
      .poll(() => page.locator('#messages').textContent())
      .toMatch(/\* rooms: #dev \(0\)|\* rooms: .*#lobby/);
    await expect.poll(() => page.locator('#messages').textContent()).toMatch(/\* in #lobby: /);
    // `/join dev` and the `/leave` after it switch rooms (which clears the list): nothing since failed.
    expect(await errors.count()).toBe(0);
    await type('/join a b c');
    const note = errors.last();
    await expect.poll(() => note.textContent()).toMatch(/Usage: \/join ROOM \[AFTER_ID\]/);
    expect(await note.getAttribute('title')).toMatch(/^ROOM_INVALID: /);
    expect(await page.locator('#messages li.msg .msg-id').first().isVisible()).toBe(true);
    await type('/ids off');
    expect(await page.locator('#messages li.msg .msg-id').first().isVisible()).toBe(false);
    await bob.waitLine(/^\[dm\] <guest\d+> hi$/);
    await bob.close();
  });

  it('shows errors as sentences, with the code in the tooltip', async () => {
    await type('/nick watcher');
    const note = page.locator('#messages li.error').last();
    await expect.poll(() => note.textContent()).toMatch(/That nickname is already taken/);
    expect(await note.textContent()).not.toMatch(/NICK_TAKEN/);
    expect(await note.getAttribute('title')).toMatch(/^NICK_TAKEN: /);
  });

  it('retries within 5 s while offline, marks the member list stale, and comes back', async () => {
    const port = server.port('http');
    await server.stop('SIGKILL');
    await page.waitForSelector('#status.offline', { timeout: 10_000 });
    expect(await page.getAttribute('#members', 'class')).toMatch(/stale/);
    // Several backoff rounds: the announced wait never exceeds 5 s (plus jitter rounding).
    const waits: number[] = [];
    const until = Date.now() + 12_000;
    while (Date.now() < until) {
      const text = (await page.textContent('#status')) ?? '';
      const m = /retrying in (\d+)s/.exec(text);
      if (m) waits.push(Number(m[1]));
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.max(...waits)).toBeLessThanOrEqual(7);
    server = await startServer({ dataDir, args: ['--http-port', String(port)] });
    await page.waitForSelector('#status.online', { timeout: 10_000 });
    expect(await page.getAttribute('#members', 'class')).not.toMatch(/stale/);
  }, 60_000);
});
