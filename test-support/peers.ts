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
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

export type PeerName =
  | 'nc'
  | 'openssl'
  | 'curl'
  | 'chromium'
  | 'redis-server'
  | 'redis-cli'
  | 'script'
  | 'tmux'
  | 'tinyproxy'
  | 'nghttp'
  | 'nghttpd'
  | 'h2load'
  | 'avahi-daemon'
  | 'avahi-browse'
  | 'avahi-publish'
  | 'dbus-daemon'
  | 'python3-zeroconf'
  | 'certutil'
  | 'wrk';

/** The Debian package that provides each peer (what `.ci/run` installs). */
export const PEER_PACKAGES: Record<PeerName, string> = {
  nc: 'netcat-openbsd',
  openssl: 'openssl',
  curl: 'curl',
  chromium: 'chromium',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  script: 'bsdutils',
  tmux: 'tmux',
  tinyproxy: 'tinyproxy',
  nghttp: 'nghttp2-client',
  nghttpd: 'nghttp2-server',
  h2load: 'nghttp2-client',
  'avahi-daemon': 'avahi-daemon',
  'avahi-browse': 'avahi-utils',
  'avahi-publish': 'avahi-utils',
  'dbus-daemon': 'dbus-daemon',
  'python3-zeroconf': 'python3-zeroconf',
  certutil: 'libnss3-tools',
  wrk: 'wrk',
};

const EXPLICIT_ENV: Partial<Record<PeerName, string>> = {
  chromium: 'CHROMIUM_PATH',
  'redis-server': 'REDIS_SERVER',
  'redis-cli': 'REDIS_CLI',
};

const BINARY_NAMES: Partial<Record<PeerName, string[]>> = {
  chromium: ['chromium', 'chromium-browser'],
  nc: ['nc', 'nc.openbsd'],
};

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

function envName(peer: PeerName): string {
  return `NET_PEER_${peer.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary: string): string[] {
  const found: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, binary);
    if (isExecutable(file)) found.push(file);
  }
  return found;
}

function pythonWithZeroconf(): string | undefined {
  for (const python of onPath('python3')) {
    try {
      execFileSync(python, ['-c', 'import zeroconf'], { stdio: 'ignore', timeout: 10_000 });
      return python;
    } catch {
      // this interpreter lacks the module; another one on PATH may have it
    }
  }
  return undefined;
}

const cache = new Map<PeerName, string | undefined>();

/**
 * The path of a peer program, or undefined when it is not installed. For `python3-zeroconf` this
 * is a python3 interpreter that can `import zeroconf`.
 */
export function findPeer(peer: PeerName): string | undefined {
  if (cache.has(peer)) return cache.get(peer);
  let found: string | undefined;
  const explicit = process.env[EXPLICIT_ENV[peer] ?? ''] ?? process.env[envName(peer)];
  if (explicit !== undefined && explicit !== '') {
    found = isExecutable(explicit) ? explicit : undefined;
  } else if (peer === 'python3-zeroconf') {
    found = pythonWithZeroconf();
  } else {
    for (const name of BINARY_NAMES[peer] ?? [peer]) {
      found = onPath(name)[0];
      if (found !== undefined) break;
    }
  }
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
function recordSkip(title: string, missing: readonly PeerName[]): void {
  const dir = join(process.cwd(), 'test-results', 'skips');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${recorded++}.json`);
  writeFileSync(file, JSON.stringify({ title, missing, reason: reasonFor(missing) }));
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
  body: () => unknown,
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
