/**
 * The chat server advertises `_net-chat._tcp` over mDNS (on the loopback interface when bound to
 * 127.0.0.1) and answers unicast DNS-SD on --udp-port; the terminal client browses for it. A
 * discovery answer is unauthenticated: names are shown without control characters, and a CA pin
 * learned from it is trusted on first use only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createResponder, find, type MdnsResponder } from '@net/udp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { waitFor } from './helpers/clients.js';
import { CLIENT_JS, type RunningServer, startServer, tempDir } from './helpers/server.js';

const children: ChildProcess[] = [];
const servers: RunningServer[] = [];
const responders: MdnsResponder[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const r of responders) await r.close();
  for (const s of servers) await s.stop('SIGKILL');
});

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', TERM: 'dumb', ...env },
  });
  children.push(child);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, out: () => out, exit };
}

const client = (args: string[], env?: NodeJS.ProcessEnv) => run(process.execPath, [CLIENT_JS, ...args], env);

function onTerminal(args: string[]) {
  const quoted = [process.execPath, CLIENT_JS, ...args].map((x) => `'${x.replace(/'/g, "'\\''")}'`);
  return run(peerPath('script'), ['-q', '-f', '-e', '-c', quoted.join(' '), '/dev/null']);
}

describe('the server advertises _net-chat._tcp', () => {
  let plain: RunningServer;
  let secure: RunningServer;
  beforeAll(async () => {
    [plain, secure] = await Promise.all([startServer(), startServer({ args: ['--tls'] })]);
    servers.push(plain, secure);
  }, 60_000);

  it('with TXT protocol version, WebSocket path, ports and (with --tls) the CA pin, on loopback', async () => {
    const found = await find('_net-chat._tcp', { interfaces: ['127.0.0.1'], timeout: 6000 });
    const mine = (s: RunningServer) => found.find((f) => f.txt.http === String(s.port('http')));
    expect(mine(plain)).toMatchObject({ port: plain.port('http'), addresses: ['127.0.0.1'] });
    expect({ ...mine(plain)!.txt }).toEqual({
      v: '1',
      path: '/ws',
      http: String(plain.port('http')),
      tcp: String(plain.port('tcp')),
    });
    expect(mine(secure)!.txt).toMatchObject({
      https: String(secure.port('https')),
      tls: String(secure.port('tls')),
      pin: secure.caPin,
    });
  });

  itWithPeers(
    ['script'],
    "lists two servers at once in the terminal client's picker (mDNS browse on loopback)",
    async () => {
      const cli = onTerminal(['--discovery-interface', '127.0.0.1', '--nick', 'browsing']);
      await waitFor('the list', () => /pick a server/.test(cli.out()), 20_000);
      // Other demo servers started by parallel tests may be listed too; ours must both be there.
      expect(cli.out()).toContain(`at ws://127.0.0.1:${plain.port('http')}/ws`);
      expect(cli.out()).toContain(`at wss://127.0.0.1:${secure.port('https')}/ws`);
      cli.child.kill('SIGKILL');
    },
    60_000,
  );
});

describe('discovery answers are not trusted blindly', () => {
  it('strips control and format characters from a discovered name', async () => {
    const evil = await createResponder({
      interfaces: ['127.0.0.1'],
      multicast: false,
      unicastPort: 0,
      host: 'evil',
    });
    responders.push(evil);
    await evil.advertise({
      name: '\u001b]0;pwned\u0007\u001b[2Jevil\u202eserver',
      type: '_net-chat._tcp',
      port: 9,
      txt: { http: 9 },
      probe: false,
    }).ready;
    const c = client([
      '--discovery-host',
      '127.0.0.1',
      '--discovery-port',
      String(evil.transport.unicastPort),
    ]);
    await waitFor('found', () => /found /.test(c.out()), 15_000);
    c.child.kill('SIGKILL');
    expect(c.out()).toContain('found ]0;pwned[2Jevilserver at ws://127.0.0.1:9/ws');
    expect(c.out()).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
  });

  describe('a discovered CA pin is trusted on first use', () => {
    let server: RunningServer;
    let pins: string;
    beforeAll(async () => {
      server = await startServer({ args: ['--tls'] });
      servers.push(server);
      pins = join(tempDir('pins-'), 'known-pins.json');
    }, 60_000);
    const args = () => [
      ...['--discovery-host', '127.0.0.1', '--discovery-port', String(server.port('udp'))],
      ...['--known-pins', pins, '--nick', 'tofu'],
    ];
    const key = () => `127.0.0.1:${server.port('https')}`;

    async function joins(c: ReturnType<typeof client>): Promise<void> {
      await waitFor('joined', () => /you joined #lobby/.test(c.out()), 20_000).catch((err) => {
        throw new Error(`${(err as Error).message}; client said:\n${c.out()}`);
      });
      c.child.stdin!.write('/quit\n');
      expect(await c.exit).toBe(0);
    }

    it('remembers the pin the first time and accepts it again', async () => {
      const first = client(args());
      await joins(first);
      expect(first.out()).toMatch(/trusted on first use, remembered in .*known-pins\.json/);
      expect(JSON.parse(readFileSync(pins, 'utf8'))).toEqual({ [key()]: server.caPin });
      const again = client(args());
      await joins(again);
      expect(again.out()).toMatch(/the one remembered for this server/);
    });

    it('refuses, with a warning, when the announced pin changed', async () => {
      writeFileSync(pins, JSON.stringify({ [key()]: 'sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }));
      const c = client(args());
      expect(await c.exit).toBe(3);
      expect(c.out()).toMatch(/WARNING: the CA pin announced for 127\.0\.0\.1:\d+ changed/);
      expect(c.out()).toContain(`announced  ${server.caPin}`);
      expect(c.out()).not.toMatch(/you joined/);
    });

    it('accepts a changed pin when the user gives it (--pin) or a CA (--ca)', async () => {
      await joins(client([...args(), '--pin', server.caPin!]));
      await joins(client([...args(), '--ca', server.caPath!]));
      // Neither overwrote what the user must resolve by hand.
      expect(JSON.parse(readFileSync(pins, 'utf8'))[key()]).not.toBe(server.caPin);
    });
  });
});
