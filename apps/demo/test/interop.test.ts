import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { waitFor, WsTestClient } from './helpers/clients.js';
import { type RunningServer, startServer } from './helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ args: ['--tls'] });
}, 60_000);
afterAll(async () => {
  await server?.stop('SIGKILL');
});

/** Run a real peer program, feed it lines one by one, collect what it prints. */
function peer(cmd: string, args: string[]) {
  let out = '';
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, out: () => out, exit };
}

describe('real peers', () => {
  itWithPeers(['nc'], 'chats with netcat (nc -C, CRLF line endings)', async () => {
    const web = await WsTestClient.open(server.urls.http!, { nick: 'web', room: 'lobby' });
    const nc = peer(peerPath('nc'), ['-C', '-q', '1', '127.0.0.1', String(server.port('tcp'))]);
    try {
      await waitFor('banner', () => /you joined #lobby/.test(nc.out()));
      nc.child.stdin!.write('/nick netcat\n');
      await waitFor('nick', () => /you are now netcat/.test(nc.out()));
      nc.child.stdin!.write('hello from real nc\n');
      await web.next('message', (f) => f.nick === 'netcat' && f.text === 'hello from real nc');
      web.send({ type: 'send', room: 'lobby', text: 'hi nc' });
      await waitFor('reply', () => nc.out().includes('[lobby] <web> hi nc\r\n'));
      nc.child.stdin!.write('/quit\n');
      await waitFor('bye', () => nc.out().includes('* bye'));
    } finally {
      nc.child.kill('SIGKILL');
      await web.close();
    }
  });

  itWithPeers(['openssl'], 'chats with openssl s_client over TLS, verifying the dev CA', async () => {
    const web = await WsTestClient.open(server.urls.http!, { nick: 'web2', room: 'lobby' });
    const port = String(server.port('tls'));
    const ssl = peer(peerPath('openssl'), [
      's_client',
      '-quiet',
      '-verify_return_error',
      '-CAfile',
      server.caPath!,
      '-verify_ip',
      '127.0.0.1',
      '-connect',
      `127.0.0.1:${port}`,
    ]);
    try {
      await waitFor('banner', () => /you joined #lobby/.test(ssl.out()));
      ssl.child.stdin!.write('/nick openssl\n');
      ssl.child.stdin!.write('hello over real TLS\n');
      await web.next('message', (f) => f.nick === 'openssl' && f.text === 'hello over real TLS');
      expect(ssl.out()).not.toMatch(/verify error/i);
    } finally {
      ssl.child.kill('SIGKILL');
      await web.close();
    }
  });
});
