import { type Browser, chromium } from 'playwright-core';
import { peerPath } from '../../../../test-support/peers.js';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    // CHROMIUM_PATH, NET_PEER_CHROMIUM or PATH; callers declare the peer with describeWithPeers.
    executablePath: peerPath('chromium'),
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 30_000,
  });
}
