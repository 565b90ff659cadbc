import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient } from './helpers/clients.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Issue 17's "Done means", end to end in Chromium: register, log in, create a private room,
 * invite a second account, chat; a third account and an anonymous HTTP client cannot read or post
 * there; a direct message reaches only its account, also after the name's previous holder logs in
 * elsewhere.
 */
describeWithPeers(['chromium'], 'issue 17 end to end', () => {
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

  async function open(): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(server.urls.http!);
    await page.waitForSelector('#status.online', { timeout: 15_000 });
    return page;
  }

  async function form(page: Page, action: 'login' | 'register', name: string, password: string) {
    await page.fill('#account-name', name);
    await page.fill('#account-password', password);
    await page.click(action === 'login' ? '#login-btn' : '#register-btn');
    await expect.poll(() => page.textContent('#account'), { timeout: 15_000 }).toBe(`logged in as ${name}`);
  }

  async function type(page: Page, text: string): Promise<void> {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  const shown = (page: Page) => page.locator('#messages').textContent();
  const dms = (page: Page) => page.locator('#messages li.dm').allTextContents();

  it('private room for invited accounts only; direct messages to accounts only', async () => {
    // bob's account exists already (registered over HTTP); he logs in on the page.
    const reg = await fetch(`${server.urls.http}/api/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bob', password: 'password-b' }),
    });
    expect(reg.status).toBe(201);
    const alice = await open();
    await form(alice, 'register', 'alice', 'password-a');
    const bob = await open();
    await form(bob, 'login', 'bob', 'password-b');
    const carol = await open();
    await form(carol, 'register', 'carol', 'password-c');

    // alice creates a private room and invites bob; they chat.
    await type(alice, '/create secret private');
    await expect.poll(() => alice.locator('#room-title').textContent()).toContain('#secret');
    await type(alice, '/invite bob');
    await expect.poll(() => shown(bob)).toContain('#secret');
    await type(bob, '/join secret');
    await type(alice, 'the plan is ready');
    await expect.poll(() => shown(bob)).toContain('the plan is ready');
    await type(bob, 'thanks alice');
    await expect.poll(() => shown(alice)).toContain('thanks alice');

    // carol (an account, not invited) cannot read or post, on the page or over HTTP.
    await type(carol, '/join secret');
    await expect
      .poll(() => carol.locator('#messages li.error').last().getAttribute('title'))
      .toMatch(/^NOT_INVITED/);
    expect(await shown(carol)).not.toContain('the plan is ready');
    await type(carol, '/token');
    await expect.poll(() => shown(carol)).toMatch(/token for carol: /);
    const carolToken = /token for carol: (\S+)/.exec((await shown(carol)) ?? '')![1]!;
    const auth = { authorization: `Bearer ${carolToken}`, 'content-type': 'application/json' };
    const read = await fetch(`${server.urls.http}/api/rooms/secret/messages`, { headers: auth });
    expect(read.status).toBe(403);
    expect(await read.text()).not.toContain('the plan is ready');
    const write = await fetch(`${server.urls.http}/api/rooms/secret/messages`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ text: 'carol was here' }),
    });
    expect(write.status).toBe(403);
    // ...nor can an anonymous HTTP client.
    const anonRead = await fetch(`${server.urls.http}/api/rooms/secret/messages`);
    expect(anonRead.status).toBe(401);
    expect(await anonRead.text()).not.toContain('the plan is ready');
    const anonWrite = await fetch(`${server.urls.http}/api/rooms/secret/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'anonymous' }),
    });
    expect(anonWrite.status).toBe(401);
    expect(await shown(alice)).not.toContain('carol was here');

    // A DM to alice reaches alice only.
    const guest = await TcpTestClient.open(server.port('tcp'));
    guest.send('/nick alice');
    await guest.waitLine(/^\* you are now guest-alice$/);
    await type(carol, '/msg alice are you there');
    await expect.poll(() => dms(alice)).toEqual([expect.stringMatching(/carol → alice: are you there$/)]);
    // alice logs out here and logs in in another browser: the DM follows her account there.
    await alice.click('#logout-btn');
    await expect.poll(() => alice.textContent('#account')).toBe('guest');
    const elsewhere = await open();
    await form(elsewhere, 'login', 'alice', 'password-a');
    await type(carol, '/msg alice still there?');
    await expect.poll(() => dms(elsewhere)).toEqual([expect.stringMatching(/carol → alice: still there\?$/)]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await dms(alice)).some((t) => t.includes('still there?'))).toBe(false);
    expect((await dms(bob)).length).toBe(0);
    expect(guest.lines.some((l) => l.startsWith('[dm]'))).toBe(false);
    await guest.close();
  });
});
