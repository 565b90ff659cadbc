import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { TcpTestClient, waitFor, WsTestClient } from './helpers/clients.js';
import { CLIENT_JS, type RunningServer, startServer, tempDir } from './helpers/server.js';

const servers: RunningServer[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) await s.stop('SIGKILL');
});

const count = (haystack: string, needle: string) => haystack.split(needle).length - 1;

describe('resume over the line protocol', () => {
  it('replays exactly the messages after the id given to /join ROOM ID', async () => {
    const server = await startServer();
    servers.push(server);
    const ws = await WsTestClient.open(server.urls.http!, { nick: 'talker', room: 'lobby' });
    const a = await TcpTestClient.open(server.port('tcp'), 'resumer');
    a.send('/ids on');
    await a.waitLine(/^\* ids on$/);
    ws.send({ type: 'send', room: 'lobby', text: 'seen', ref: '1' });
    const seen = await a.waitLine(/^@\d+-\d+ \[lobby\] <talker> seen$/);
    const lastId = seen.slice(1, seen.indexOf(' '));
    await a.close();
    ws.send({ type: 'send', room: 'lobby', text: 'missed 1' });
    ws.send({ type: 'send', room: 'lobby', text: 'missed 2', ref: '3' });
    await ws.next('ack', (f) => f.ref === '3');
    const b = await TcpTestClient.open(server.port('tcp'));
    const mark = b.lines.length;
    b.send('/ids on');
    b.send(`/join lobby ${lastId}`);
    await b.waitLine(/^@\S+ \[lobby\] <talker> missed 2$/);
    const replay = b.lines.slice(mark).filter((l) => l.startsWith('@'));
    expect(replay.map((l) => l.replace(/^@\S+ /, ''))).toEqual([
      '[lobby] <talker> missed 1',
      '[lobby] <talker> missed 2',
    ]);
    await b.close();
    await ws.close();
  });

  it('lets the terminal client over tcp:// reconnect after a server restart without repeats', async () => {
    const dataDir = tempDir('chat-resume-');
    const first = await startServer({ dataDir });
    servers.push(first);
    const tcpPort = first.port('tcp');
    let out = '';
    const cli = spawn(
      process.execPath,
      [CLIENT_JS, '--url', `tcp://127.0.0.1:${tcpPort}`, '--nick', 'term'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    children.push(cli);
    cli.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    cli.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitFor('cli joined', () => /you joined #lobby/.test(out), 20_000);

    const ws1 = await WsTestClient.open(first.urls.http!, { nick: 'web', room: 'lobby' });
    ws1.send({ type: 'send', room: 'lobby', text: 'before restart' });
    await waitFor('before', () => out.includes('[lobby] <web> before restart'));

    expect(await first.stop('SIGTERM')).toBe(0);
    await waitFor('cli noticed', () => /disconnected/.test(out));
    // Same data directory and TCP port: the client reconnects to the restarted server.
    const second = await startServer({ dataDir, args: ['--tcp-port', String(tcpPort)] });
    servers.push(second);
    const ws2 = await WsTestClient.open(second.urls.http!, { nick: 'web', room: 'lobby' });
    ws2.send({ type: 'send', room: 'lobby', text: 'during reconnect', ref: 'd' });
    await ws2.next('ack', (f) => f.ref === 'd');
    await waitFor('during', () => out.includes('[lobby] <web> during reconnect'), 20_000);
    await waitFor('rejoined', () => count(out, 'welcome to') >= 2, 20_000);
    ws2.send({ type: 'send', room: 'lobby', text: 'after reconnect' });
    await waitFor('after', () => out.includes('[lobby] <web> after reconnect'));
    cli.stdin!.write('still here\n');
    await ws2.next('message', (f) => f.nick === 'term' && f.text === 'still here');

    expect(count(out, '<web> before restart')).toBe(1);
    expect(count(out, '<web> during reconnect')).toBe(1);
    expect(count(out, '<web> after reconnect')).toBe(1);
    expect(out).not.toMatch(/^@/m);
    cli.stdin!.write('/quit\n');
    await ws2.close();
  }, 60_000);
});
