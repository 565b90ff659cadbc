import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient } from './helpers/clients.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Accounts on the web page in Chromium: register and log in through the form, a direct message
 * reaches only its account (also after a reload, and after the name's previous holder logs in
 * elsewhere), a guest cannot take a registered name, errors show as sentences.
 */
describeWithPeers(['chromium'], 'accounts on the web page', () => {
  let server: RunningServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    server = await startServer({ args: ['--guests', 'on'] });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop('SIGKILL');
  });

  /** A page in its own browser context (own sessionStorage, like another person's browser). */
  async function open(): Promise<Page> {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(server.urls.http!);
    await page.waitForSelector('#status.online', { timeout: 15_000 });
    return page;
  }

  async function account(page: Page, action: 'login' | 'register', name: string, password: string) {
    await page.fill('#account-name', name);
    await page.fill('#account-password', password);
    await page.click(action === 'login' ? '#login-btn' : '#register-btn');
  }

  async function type(page: Page, text: string): Promise<void> {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  const dms = (page: Page) => page.locator('#messages li.dm').allTextContents();

  it('register, log in, direct messages to accounts only, reload, log out, log in elsewhere', async () => {
    const alice = await open();
    await account(alice, 'register', 'alice', 'password-1');
    await expect.poll(() => alice.textContent('#account')).toBe('logged in as alice');
    expect(await alice.textContent('#nick')).toBe('alice');
    expect(await alice.isVisible('#account-form')).toBe(false);

    const bob = await open();
    await account(bob, 'login', 'bob', 'password-1');
    // A wrong login shows a sentence, the code stays in the tooltip.
    const note = bob.locator('#messages li.error').last();
    await expect.poll(() => note.textContent()).toMatch(/Wrong name or password\./);
    expect(await note.getAttribute('title')).toMatch(/^LOGIN_FAILED: /);
    await account(bob, 'register', 'bob', 'password-2');
    await expect.poll(() => bob.textContent('#account')).toBe('logged in as bob');

    // A guest tries to be alice: it gets a guest name and none of her mail.
    const guest = await TcpTestClient.open(server.port('tcp'));
    guest.send('/nick alice');
    await guest.waitLine(/^\* you are now guest-alice$/);

    await type(bob, '/msg alice hello alice');
    await expect.poll(() => dms(alice)).toEqual([expect.stringMatching(/bob → alice: hello alice$/)]);

    // A reload continues the login session (token in sessionStorage).
    await alice.reload();
    await alice.waitForSelector('#status.online', { timeout: 15_000 });
    await expect.poll(() => alice.textContent('#account')).toBe('logged in as alice');
    await type(bob, '/msg alice after the reload');
    await expect
      .poll(() => alice.locator('#messages').textContent())
      .toMatch(/bob → alice: after the reload/);

    // alice logs out on this page and logs in in another browser: her mail goes there only.
    await alice.click('#logout-btn');
    await expect.poll(() => alice.textContent('#account')).toBe('guest');
    expect(await alice.textContent('#nick')).toMatch(/^guest-\d+$/);
    const elsewhere = await open();
    await account(elsewhere, 'login', 'alice', 'password-1');
    await expect.poll(() => elsewhere.textContent('#account')).toBe('logged in as alice');
    await type(bob, '/msg alice are you there');
    await expect.poll(() => dms(elsewhere)).toEqual([expect.stringMatching(/bob → alice: are you there$/)]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await dms(alice)).some((t) => t.includes('are you there'))).toBe(false);
    expect(guest.lines.some((l) => l.startsWith('[dm]'))).toBe(false);

    // Room messages carry the account name; anonymous HTTP writes are refused.
    await type(elsewhere, 'hi from alice');
    await guest.waitLine(/^\[lobby\] <alice> hi from alice$/);
    const anon = await fetch(`${server.urls.http}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'anonymous' }),
    });
    expect(anon.status).toBe(401);
    await guest.close();
  });
});
