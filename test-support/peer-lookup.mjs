// Where each peer program lives, found the same way by the tests (through peers.ts) and by the root
// test runner (which keys the turbo cache on the result, so a cached run made with Chromium present
// is never replayed on a machine without it). Plain JavaScript so that scripts/test-all.mjs can
// import it without a build step.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The Debian package that provides each peer (what `.ci/run` installs). */
export const PEER_PACKAGES = {
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

/** Variables that name a peer's path explicitly (besides NET_PEER_<NAME> for every peer). */
export const EXPLICIT_ENV = {
  chromium: 'CHROMIUM_PATH',
  'redis-server': 'REDIS_SERVER',
  'redis-cli': 'REDIS_CLI',
};

const BINARY_NAMES = {
  chromium: ['chromium', 'chromium-browser'],
  nc: ['nc', 'nc.openbsd'],
};

/** NET_PEER_NC, NET_PEER_REDIS_SERVER, … */
export function peerEnvName(peer) {
  return `NET_PEER_${peer.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary, env) {
  const found = [];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, binary);
    if (isExecutable(file)) found.push(file);
  }
  return found;
}

function pythonWithZeroconf(env) {
  for (const python of onPath('python3', env)) {
    try {
      execFileSync(python, ['-c', 'import zeroconf'], { stdio: 'ignore', timeout: 10_000 });
      return python;
    } catch {
      // this interpreter lacks the module; another one on PATH may have it
    }
  }
  return undefined;
}

/**
 * The path of a peer program, or undefined when it is not installed: an explicit variable first
 * (CHROMIUM_PATH, REDIS_SERVER, REDIS_CLI or NET_PEER_<NAME>; set but not executable means
 * missing), then PATH. For `python3-zeroconf` this is a python3 that can `import zeroconf`.
 */
export function lookupPeer(peer, env = process.env) {
  const explicit = env[EXPLICIT_ENV[peer] ?? ''] ?? env[peerEnvName(peer)];
  if (explicit !== undefined && explicit !== '') return isExecutable(explicit) ? explicit : undefined;
  if (peer === 'python3-zeroconf') return pythonWithZeroconf(env);
  for (const name of BINARY_NAMES[peer] ?? [peer]) {
    const found = onPath(name, env)[0];
    if (found !== undefined) return found;
  }
  return undefined;
}
