import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Issue 17's end-to-end story on real Chromium: register, create a private room, invite a second
 * account, chat; a third account and an anonymous HTTP client cannot read or post there; a kick
 * shows as a sentence.
 */
describeWithPeers(['chromium'], 'private rooms on the web page', () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServer({ args: ['--guests', 'on'] });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
  });

  /** A page in its own context (its own sessionStorage), registered as `name`. */
  async function user(name: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(server.urls.http!);
    await page.waitForSelector('#status.online', { timeout: 15_000 });
    await type(page, `/register ${name} password-1`);
    await expect.poll(() => page.locator('#account').textContent(), { timeout: 15_000 }).toContain(name);
    return page;
  }

  async function type(page: Page, text: string): Promise<void> {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  const shown = (page: Page) => page.locator('#messages').textContent();

  it('lets members chat, keeps everyone else out with sentences, and shows a kick', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const carol = await user('carol');

    await type(alice, '/create secret private');
    await expect.poll(() => alice.locator('#room-title').textContent()).toBe('🔒 #secret');
    await type(alice, 'only for the invited');
    await expect.poll(() => shown(alice)).toContain('only for the invited');

    await type(carol, '/join secret');
    const refused = carol.locator('#messages li.error').last();
    await expect
      .poll(() => refused.textContent())
      .toContain('That room is private: its owner has to invite you first.');
    expect(await refused.getAttribute('title')).toMatch(/^NOT_INVITED: /);
    // The page goes back to the room it was in instead of showing the refused one.
    expect(await carol.locator('#room-title').textContent()).toBe('#lobby');
    expect(await shown(carol)).not.toContain('only for the invited');
    const anon = await fetch(`${server.urls.http}/api/rooms/secret/messages`);
    expect(anon.status).toBe(401);
    const anonPost = await fetch(`${server.urls.http}/api/rooms/secret/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'anonymous' }),
    });
    expect(anonPost.status).toBe(401);

    await type(alice, '/invite bob');
    await expect.poll(() => shown(alice)).toContain('You invited bob to #secret.');
    await expect.poll(() => shown(bob)).toContain('invited you to #secret');
    await type(bob, '/join secret');
    await expect.poll(() => shown(bob)).toContain('only for the invited');
    await type(bob, 'hello alice');
    await expect.poll(() => shown(alice)).toContain('hello alice');

    await type(alice, '/kick bob');
    await expect.poll(() => shown(alice)).toContain('You removed bob from #secret.');
    await expect.poll(() => shown(bob)).toContain('alice removed you from the private room #secret.');
    await type(alice, 'after bob left');
    await expect.poll(() => shown(alice)).toContain('after bob left');
    expect(await shown(bob)).not.toContain('after bob left');
    await type(carol, '/invite carol secret');
    await expect
      .poll(() => carol.locator('#messages li.error').last().getAttribute('title'))
      .toMatch(/^NOT_OWNER: /);
  });
});
