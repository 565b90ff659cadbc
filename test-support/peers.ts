/**
 * Peer programs the interop tests talk to (nc, openssl, Chromium, redis-server, …).
 *
 * One rule for every package: a test that needs a peer is declared with `describeWithPeers` or
 * `itWithPeers`. When a peer is missing the tests skip, and the reason is written under
 * `test-results/skips/` so the root test runner can print one line per skipped group. With
 * `CI=true` a missing peer is a failure instead: CI must have every peer.
 *
 * Lookup honours an explicit path first (CHROMIUM_PATH, REDIS_SERVER, or NET_PEER_<NAME> such as
 * NET_PEER_NC), then PATH. There are no hard-coded /usr/bin paths.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'vitest';
import { lookupPeer, PEER_PACKAGES, type PeerName } from './peer-lookup.mjs';

export { PEER_PACKAGES, type PeerName };

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

const cache = new Map<PeerName, string | undefined>();

/**
 * The path of a peer program, or undefined when it is not installed. For `python3-zeroconf` this
 * is a python3 interpreter that can `import zeroconf`.
 */
export function findPeer(peer: PeerName): string | undefined {
  if (cache.has(peer)) return cache.get(peer);
  const found = lookupPeer(peer);
  cache.set(peer, found);
  return found;
}

/** The path of a peer the calling test declared with describeWithPeers/itWithPeers. */
export function peerPath(peer: PeerName): string {
  const path = findPeer(peer);
  if (path === undefined) throw new Error(`${peer} not found (install ${PEER_PACKAGES[peer]})`);
  return path;
}

function missingPeers(peers: readonly PeerName[]): PeerName[] {
  return peers.filter((peer) => findPeer(peer) === undefined);
}

function reasonFor(missing: readonly PeerName[]): string {
  const packages = [...new Set(missing.map((peer) => PEER_PACKAGES[peer]))].join(' ');
  return `${missing.join(', ')} not found; install ${packages} or run bash .ci/run`;
}

let recorded = 0;
function recordSkip(title: string, missing: readonly PeerName[], reason = reasonFor(missing)): void {
  const dir = join(process.cwd(), 'test-results', 'skips');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${recorded++}.json`);
  writeFileSync(file, JSON.stringify({ title, missing, reason }));
}

/**
 * Skip the running test for a reason other than a missing peer (say, no IPv6 on this host), with
 * the reason recorded for the root summary like a missing peer's. Not a failure under CI: use it
 * only for what CI cannot provide either.
 */
export function skipTest(ctx: TestContext, reason: string): never {
  recordSkip(ctx.task.name, [], reason);
  ctx.skip(reason);
  throw new Error('unreachable: ctx.skip() throws');
}

/**
 * A describe block whose tests need the given peers: skipped with a recorded reason when one is
 * missing, failed (one test that says what is missing) when one is missing under CI=true.
 */
export function describeWithPeers(peers: readonly PeerName[], title: string, body: () => void): void {
  const missing = missingPeers(peers);
  if (missing.length === 0) {
    describe(title, body);
  } else if (inCI) {
    describe(title, () => {
      it(`has its peers (${missing.join(', ')})`, () => {
        throw new Error(`CI=true and ${reasonFor(missing)}`);
      });
    });
  } else {
    recordSkip(title, missing);
    describe.skip(title, body);
  }
}

/** One test that needs the given peers; same rules as describeWithPeers. */
export function itWithPeers(
  peers: readonly PeerName[],
  title: string,
  body: (ctx: TestContext) => unknown,
  timeout?: number,
): void {
  const missing = missingPeers(peers);
  if (missing.length === 0) {
    it(title, body, timeout);
  } else if (inCI) {
    it(title, () => {
      throw new Error(`CI=true and ${reasonFor(missing)}`);
    });
  } else {
    recordSkip(title, missing);
    it.skip(title, body, timeout);
  }
}
