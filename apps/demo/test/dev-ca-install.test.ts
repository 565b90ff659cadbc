import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { CHROMIUM_ARGS } from './helpers/browser.js';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';

const exec = promisify(execFile);
// The command a user runs, from the built @net/security package this app depends on.
const DEV_CA_CLI = resolve(import.meta.dirname, '../node_modules/@net/security/bin/net-dev-ca.js');

describeWithPeers(['chromium', 'certutil'], 'net-dev-ca install makes Chromium trust the dev CA', () => {
  let server: RunningServer;
  // A private HOME: Chromium on Linux reads the NSS database at $HOME/.pki/nssdb.
  const home = tempDir('net-dev-ca-home-');

  beforeAll(async () => {
    server = await startServer({ args: ['--tls'] });
  }, 60_000);
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  const devCa = (verb: string) =>
    exec(process.execPath, [DEV_CA_CLI, '--dir', join(server.dataDir, 'ca'), verb, '--nss'], {
      env: { ...process.env, HOME: home },
      timeout: 30_000,
    });

  /** Opens the demo's https:// page with no certificate flags; resolves 'online' or the error. */
  async function openPage(): Promise<string> {
    const browser = await chromium.launch({
      executablePath: peerPath('chromium'),
      args: CHROMIUM_ARGS,
      env: { ...process.env, HOME: home },
      timeout: 30_000,
    });
    try {
      const page = await browser.newPage();
      const outcome = await page.goto(server.urls.https!).then(
        () => 'loaded',
        (err: Error) => err.message,
      );
      if (outcome !== 'loaded') return outcome;
      await page.waitForSelector('#status.online', { timeout: 15_000 });
      return 'online';
    } finally {
      await browser.close();
    }
  }

  it('refuses the page before install, loads it after, and refuses again after uninstall', async () => {
    expect(await openPage()).toMatch(/ERR_CERT_AUTHORITY_INVALID/);
    const installed = await devCa('install');
    expect(installed.stdout).toMatch(/added "net-dev-ca [0-9a-f]{16}" to NSS database .*\.pki\/nssdb/);
    expect(await openPage()).toBe('online');
    const removed = await devCa('uninstall');
    expect(removed.stdout).toMatch(/removed "net-dev-ca [0-9a-f]{16}" from NSS database/);
    expect(await openPage()).toMatch(/ERR_CERT_AUTHORITY_INVALID/);
  }, 120_000);

  it('answers an unknown flag with a short usage message', async () => {
    const err = await exec(process.execPath, [DEV_CA_CLI, '--bogus'], { timeout: 30_000 }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toBe(
      "net-dev-ca: Unknown option '--bogus'\nusage: net-dev-ca [options] <name|ip>... | install | uninstall  (net-dev-ca --help)\n",
    );
  });
});
