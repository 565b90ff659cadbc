import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { waitFor, WsTestClient } from './helpers/clients.js';
import { CLIENT_JS, type RunningServer, startServer } from './helpers/server.js';

/**
 * Two servers answer discovery: on a terminal the client lists them and connects to the one the
 * user picks; without a terminal (or with --first) it takes the first. The servers listen on two
 * loopback addresses (127.0.0.1 and 127.0.0.2) with the same discovery port, like two machines on
 * a LAN; the client asks both (`--discovery-host` twice). The terminal is a pseudo-terminal from
 * util-linux `script` (Debian bsdutils); the picker tests skip (recorded) without it.
 */

let a: RunningServer;
let b: RunningServer;
let discoveryPort: number;
const children: ChildProcess[] = [];

/** A UDP port free on both loopback addresses (bind both, read, close). */
async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const s1 = createSocket('udp4');
    const port = await new Promise<number>((r) => s1.bind(0, '127.0.0.1', () => r(s1.address().port)));
    const s2 = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      s2.once('error', () => r(false));
      s2.bind(port, '127.0.0.2', () => r(true));
    });
    s1.close();
    s2.close();
    if (ok) return port;
  }
  throw new Error('no UDP port free on 127.0.0.1 and 127.0.0.2');
}

beforeAll(async () => {
  discoveryPort = await freeUdpPort();
  a = await startServer({ args: ['--udp-port', String(discoveryPort)] });
  b = await startServer({ args: ['--host', '127.0.0.2', '--udp-port', String(discoveryPort)] });
}, 60_000);
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await a?.stop('SIGKILL');
  await b?.stop('SIGKILL');
});

const discoveryArgs = () => [
  '--discovery-port',
  String(discoveryPort),
  '--discovery-host',
  '127.0.0.1',
  '--discovery-host',
  '127.0.0.2',
];

function run(command: string, args: string[]) {
  let out = '';
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', TERM: 'dumb' },
  });
  children.push(child);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { child, out: () => out };
}

/** The client on a pseudo-terminal: `script` gives it a tty for stdin and stdout. */
function onTerminal(args: string[]) {
  const quoted = [process.execPath, CLIENT_JS, ...args].map((x) => `'${x.replace(/'/g, "'\\''")}'`);
  return run(peerPath('script'), ['-q', '-f', '-e', '-c', quoted.join(' '), '/dev/null']);
}

async function inLobby(s: RunningServer, nick: string): Promise<boolean> {
  const c = await WsTestClient.open(s.urls.http!);
  try {
    c.send({ type: 'who', room: 'lobby', ref: 'w' });
    const who = await c.next('who');
    return (who.members as string[]).includes(nick);
  } finally {
    await c.close();
  }
}

describe('terminal client discovery with several servers', () => {
  itWithPeers(
    ['script'],
    'lists both servers on a terminal and connects to the one picked',
    async () => {
      const cli = onTerminal([...discoveryArgs(), '--nick', 'picker']);
      await waitFor('the list', () => /pick a server \[1-2/.test(cli.out()), 20_000);
      expect(cli.out()).toMatch(/2 servers answered/);
      expect(cli.out()).toMatch(/1\) net-chat\/[\d.]+( \(\d+\))? at ws:\/\/127\.0\.0\.1:\d+\/ws/);
      expect(cli.out()).toMatch(/2\) net-chat\/[\d.]+( \(\d+\))? at ws:\/\/127\.0\.0\.2:\d+\/ws/);
      cli.child.stdin!.write('7\r');
      await waitFor('asked again', () => /type a number from 1 to 2/.test(cli.out()), 15_000);
      cli.child.stdin!.write('2\r');
      await waitFor('joined', () => /you joined #lobby/.test(cli.out()), 20_000);
      expect(cli.out()).toMatch(
        new RegExp(`found net-chat/[\\d.]+( \\(\\d+\\))? at ws://127\\.0\\.0\\.2:${b.port('http')}/ws`),
      );
      expect(await inLobby(b, 'picker')).toBe(true);
      expect(await inLobby(a, 'picker')).toBe(false);
      cli.child.stdin!.write('/quit\r');
    },
    60_000,
  );

  itWithPeers(
    ['script'],
    'takes the first without asking with --first, even on a terminal',
    async () => {
      const cli = onTerminal([...discoveryArgs(), '--first', '--nick', 'firsty']);
      await waitFor('joined', () => /you joined #lobby/.test(cli.out()), 20_000);
      expect(cli.out()).not.toMatch(/pick a server/);
      expect(cli.out()).toContain(`at ws://127.0.0.1:${a.port('http')}/ws`);
      cli.child.stdin!.write('/quit\r');
    },
    60_000,
  );

  it('takes the first without asking when stdin is not a terminal', async () => {
    const cli = run(process.execPath, [CLIENT_JS, ...discoveryArgs(), '--nick', 'piped']);
    await waitFor('joined', () => /you joined #lobby/.test(cli.out()), 20_000);
    expect(cli.out()).not.toMatch(/pick a server/);
    expect(cli.out()).toContain(`at ws://127.0.0.1:${a.port('http')}/ws`);
    expect(await inLobby(a, 'piped')).toBe(true);
    cli.child.stdin!.write('/quit\n');
    const code = await new Promise<number | null>((r) => cli.child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  }, 60_000);
});
