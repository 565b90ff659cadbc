import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCA, spkiPin } from '@net/security';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itWithPeers } from '../../../test-support/peers.js';
import { launchChromium } from './helpers/browser.js';
import { TcpTestClient, waitFor } from './helpers/clients.js';
import { CLIENT_JS, type RunningServer, startServer, tempDir } from './helpers/server.js';

let server: RunningServer;
let browser: Browser | undefined;
let plain: TcpTestClient;
const children: ChildProcess[] = [];

function runClient(args: string[]) {
  let out = '';
  const child = spawn(process.execPath, [CLIENT_JS, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  children.push(child);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, out: () => out, exit };
}

beforeAll(async () => {
  server = await startServer({ args: ['--tls'] });
  plain = await TcpTestClient.open(server.port('tcp'), 'plain');
}, 60_000);
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await browser?.close();
  await server?.stop('SIGKILL');
});

describe('TLS with the dev CA', () => {
  it('prints the CA path and serves TLS listeners', () => {
    expect(server.caPath).toMatch(/ca\.pem$/);
    expect(readFileSync(server.caPath!, 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    expect(Object.keys(server.urls).sort()).toEqual(['http', 'https', 'tcp', 'tls', 'udp']);
  });

  it('lets the terminal client chat over tls:// with --ca', async () => {
    const c = runClient(['--url', server.urls.tls!, '--ca', server.caPath!, '--nick', 'secure']);
    await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000);
    c.child.stdin!.write('over tls\n');
    await plain.waitLine(/^\[lobby\] <secure> over tls$/);
    plain.send('back over plain tcp');
    await waitFor('reply', () => c.out().includes('[lobby] <plain> back over plain tcp'));
    c.child.stdin!.write('/quit\n');
    expect(await c.exit).toBe(0);
  });

  it('discovers the server and trusts it through the announced CA pin (wss://)', async () => {
    const c = runClient([
      ...['--discovery-host', '127.0.0.1', '--discovery-port', String(server.port('udp'))],
      ...['--known-pins', join(tempDir('pins-'), 'known-pins.json'), '--nick', 'pinned'],
    ]);
    await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000);
    expect(c.out()).toMatch(/at wss:\/\/127\.0\.0\.1:\d+\/ws/);
    expect(c.out()).toMatch(/verified against the announced pin/);
    c.child.stdin!.write('pinned hello\n');
    await plain.waitLine(/^\[lobby\] <pinned> pinned hello$/);
    c.child.stdin!.write('/quit\n');
    expect(await c.exit).toBe(0);
  });

  it('refuses a server whose certificate is not from the given CA (tls:// and wss://)', async () => {
    const other = await createCA({ name: 'someone else' });
    const wrong = join(tempDir('wrong-ca-'), 'ca.pem');
    writeFileSync(wrong, other.cert);
    for (const url of [server.urls.tls!, `${server.urls.https!.replace('https', 'wss')}/ws`]) {
      const c = runClient(['--url', url, '--ca', wrong, '--nick', 'mallory']);
      const code = await c.exit;
      expect(code).not.toBe(0);
      expect(c.out()).toMatch(/certificate|verify/i);
      expect(c.out()).not.toMatch(/you joined/);
    }
  });

  itWithPeers(
    ['chromium'],
    'serves the page over https:// and WSS to Chromium trusting the dev certificate',
    async () => {
      const leaf = readFileSync(join(server.dataDir, 'ca', 'server.pem'), 'utf8');
      browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiPin(leaf)}`]);
      const page = await browser.newPage();
      await page.goto(server.urls.https!);
      await page.waitForSelector('#status.online', { timeout: 15_000 });
      await page.fill('#input', 'from https');
      await page.press('#input', 'Enter');
      await plain.waitLine(/<guest\d+> from https$/);
      expect(page.url()).toMatch(/^https:/);
    },
  );
});
