import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers } from '../../../test-support/peers.js';
import { TcpTestClient } from './helpers/clients.js';
import {
  connectionsGauge,
  type RawConn,
  rawTcp,
  rawTls,
  redisAdmin,
  waitFor,
  wsServerTexts,
  wsTextFrame,
  wsUpgrade,
} from './helpers/raw.js';
import { eventually, type RedisInstance, startRedis } from './helpers/redis.js';
import { type RunningServer, startServer } from './helpers/server.js';

/**
 * Session start-up is asynchronous (a nickname claim, then joining the lobby, both store round
 * trips; on Redis they can wait seconds). A connection that ends meanwhile must not leave a ghost
 * session behind, and input that arrives meanwhile must be handled in order once the session is
 * up, on every transport and on both stores (issue 21, issue 16 "Scale-out correctness").
 * Real node processes; with Redis, `DEBUG SLEEP` holds start-up in the middle.
 */

type Admin = Awaited<ReturnType<typeof redisAdmin>>;

interface Fixture {
  server: RunningServer;
  /** Pause Redis for `ms` (DEBUG SLEEP); a no-op on the file store. Resolves when it is asleep. */
  stall(ms: number): Promise<void>;
  /** Nickname claims held in the store (Redis only; undefined on the file store). */
  nickClaims(): Promise<number | undefined>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tests(store: 'file' | 'redis', fixture: () => Fixture): void {
  const f = () => fixture();

  async function observer(nick: string): Promise<TcpTestClient> {
    return TcpTestClient.open(f().server.port('tcp'), nick);
  }

  async function who(obs: TcpTestClient): Promise<string> {
    const from = obs.lines.length;
    obs.send('/who');
    return waitFor('who', () => obs.lines.slice(from).find((l) => l.startsWith('* in #lobby:')));
  }

  /** No ghost: only the observer is in the lobby and connected, also after a heartbeat period. */
  async function expectNoGhosts(obs: TcpTestClient, nick: string): Promise<void> {
    const httpUrl = f().server.urls.http!;
    await eventually(
      'ghost sessions to be gone',
      async () => (await who(obs)) === `* in #lobby: ${nick}` && (await connectionsGauge(httpUrl)) === 1,
      20_000,
    );
    // The presence heartbeat (every 2 s) must not bring anything back.
    await sleep(2500);
    expect(await who(obs)).toBe(`* in #lobby: ${nick}`);
    expect(await connectionsGauge(httpUrl)).toBe(1);
    const claims = await f().nickClaims();
    if (claims !== undefined) expect(claims).toBe(1);
    const from = obs.lines.length;
    obs.send('/rooms');
    const rooms = await waitFor('rooms', () => obs.lines.slice(from).find((l) => l.startsWith('* rooms:')));
    expect(rooms).toMatch(/#lobby \(1\)/);
  }

  it(`${store}: TCP connections dropped at every step of start-up leave no ghost`, async () => {
    const obs = await observer('obst');
    const port = f().server.port('tcp');
    const drops: Promise<void>[] = [];
    // Step 1: dropped while the nickname claim is pending.
    await f().stall(600);
    for (let i = 0; i < 20; i++) {
      drops.push(
        rawTcp(port).then((c) => {
          c.socket.destroy();
        }),
      );
    }
    await Promise.all(drops.splice(0));
    // Step 2: dropped right after the welcome, while joining the lobby is pending.
    for (let i = 0; i < 10; i++) {
      const c = await rawTcp(port);
      await waitFor('welcome', () => c.text().includes('* welcome'));
      await f().stall(300);
      c.socket.destroy();
    }
    // Step 3: dropped after a random delay, anywhere in start-up.
    for (let i = 0; i < 20; i++) {
      drops.push(
        rawTcp(port).then(async (c) => {
          await sleep(Math.floor(Math.random() * 30));
          c.socket.destroy();
        }),
      );
    }
    await Promise.all(drops);
    await expectNoGhosts(obs, 'obst');
    await obs.close();
  }, 60_000);

  it(`${store}: WebSocket connections dropped during start-up leave no ghost`, async () => {
    const obs = await observer('obsw');
    const port = f().server.port('http');
    const upgraded = (c: RawConn) => c.text().startsWith('HTTP/1.1 101');
    await f().stall(600);
    const drops: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      drops.push(
        rawTcp(port, wsUpgrade(port)).then(async (c) => {
          // Right after the 101: the session is starting (its nickname claim waits on the store).
          await waitFor('101', () => upgraded(c));
          c.socket.destroy();
        }),
      );
    }
    for (let i = 0; i < 10; i++) {
      drops.push(
        rawTcp(port, wsUpgrade(port)).then(async (c) => {
          await sleep(Math.floor(Math.random() * 30));
          c.socket.destroy();
        }),
      );
    }
    await Promise.all(drops);
    await expectNoGhosts(obs, 'obsw');
    await obs.close();
  }, 60_000);

  it(`${store}: TCP lines sent before the session is up are handled in order`, async () => {
    const obs = await observer('obsp');
    await f().stall(400);
    const c = await rawTcp(f().server.port('tcp'), '/nick yan1\r\nhello from yan1\r\n/who\r\n');
    await obs.waitLine(/^\[lobby\] <yan1> hello from yan1$/);
    await waitFor('who reply', () => /\* in #lobby: .*yan1/.test(c.text()));
    expect(c.text()).not.toMatch(/^! /m);
    c.socket.destroy();
    await obs.close();
  }, 60_000);

  it(`${store}: lines sent with a half-close right away (printf … | nc -N) are answered, then closed`, async () => {
    const obs = await observer('obsn');
    await f().stall(400);
    const c = await rawTcp(f().server.port('tcp'), '/nick yan4\r\nhello from yan4\r\n');
    c.socket.end(); // FIN: nothing more from this client, but it still reads
    await obs.waitLine(/^\[lobby\] <yan4> hello from yan4$/);
    await c.closed;
    expect(c.text()).toMatch(/\* welcome to [\s\S]*\* you are now yan4/);
    expect(c.text()).not.toMatch(/^! /m);
    await obs.close();
  }, 60_000);

  it(`${store}: TLS lines sent before the session is up are handled in order`, async () => {
    const obs = await observer('obsl');
    await f().stall(400);
    const c = await rawTls(f().server.port('tls'), '/nick yan2\r\nhello from yan2\r\n');
    await obs.waitLine(/^\[lobby\] <yan2> hello from yan2$/);
    expect(c.text()).not.toMatch(/^! /m);
    c.socket.destroy();
    await obs.close();
  }, 60_000);

  it(`${store}: WebSocket frames sent before welcome are handled in order`, async () => {
    const obs = await observer('obsj');
    const port = f().server.port('http');
    await f().stall(400);
    const frames = [
      { type: 'nick', nick: 'yan3', ref: 'n' },
      { type: 'join', room: 'lobby', ref: 'j' },
      { type: 'send', room: 'lobby', text: 'hello from yan3', ref: 's' },
    ];
    const c = await rawTcp(
      port,
      Buffer.concat([Buffer.from(wsUpgrade(port)), ...frames.map((x) => wsTextFrame(JSON.stringify(x)))]),
    );
    await obs.waitLine(/^\[lobby\] <yan3> hello from yan3$/);
    const replies = await waitFor('ack', () => {
      const t = wsServerTexts(c.bytes()).map((x) => JSON.parse(x) as { type: string; ref?: string });
      return t.some((x) => x.type === 'ack' && x.ref === 's') ? t : undefined;
    });
    expect(replies.filter((x) => x.ref !== undefined).map((x) => `${x.type}:${x.ref}`)).toEqual([
      'nick:n',
      'joined:j',
      'ack:s',
    ]);
    expect(replies[0]!.type).toBe('welcome');
    c.socket.destroy();
    await obs.close();
  }, 60_000);

  it(`${store}: pipelined HTTP requests are each answered`, async () => {
    const obs = await observer('obsh');
    const from = obs.lines.length;
    obs.send('/token');
    const tokenLine = await waitFor('token', () =>
      obs.lines.slice(from).find((l) => l.startsWith('* token')),
    );
    const token = tokenLine.slice(tokenLine.lastIndexOf(' ') + 1);
    const port = f().server.port('http');
    const body = JSON.stringify({ text: 'posted by obsh', cid: 'pipe-1' });
    // HTTP has no session to start; pipelined requests are answered in order, while the store
    // is stalled too.
    const req =
      `POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
      `GET /api/rooms/lobby/messages?limit=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n` +
      `GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
    await f().stall(300);
    const c = await rawTcp(port, req);
    await c.closed;
    const text = c.text();
    expect(text.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 201 ', 'HTTP/1.1 200 ', 'HTTP/1.1 200 ']);
    // Responses come back in request order (handlers may run concurrently, so the history read
    // need not see the POST yet); the message is stored.
    expect(text.split('HTTP/1.1 201 ')[1]).toContain('posted by obsh');
    const history = await (await fetch(`${f().server.urls.http}/api/rooms/lobby/messages?limit=5`)).text();
    expect(history).toContain('posted by obsh');
    expect(text).toContain('"rooms":');
    await obs.close();
  }, 60_000);
}

describe('session start-up on the file store', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ args: ['--tls', '--rate', '200', '--burst', '200'] });
  });
  afterAll(async () => {
    await server?.stop();
  });
  tests('file', () => ({ server, stall: async () => {}, nickClaims: async () => undefined }));
});

describeWithPeers(['redis-server'], 'session start-up on Redis', () => {
  let redis: RedisInstance;
  let server: RunningServer;
  let admin: Admin;
  beforeAll(async () => {
    redis = await startRedis({ extraArgs: ['--enable-debug-command', 'local'] });
    server = await startServer({ args: ['--redis', redis.url, '--tls', '--rate', '200', '--burst', '200'] });
    admin = await redisAdmin(redis.url);
  });
  afterAll(async () => {
    await server?.stop();
    await admin?.close();
    await redis?.destroy();
  });
  tests('redis', () => ({
    server,
    async stall(ms) {
      // A second connection, so the admin client stays usable while Redis sleeps.
      const sleeper = await redisAdmin(redis.url);
      void sleeper
        .cmd('DEBUG', 'SLEEP', String(ms / 1000))
        .catch(() => {})
        .finally(() => void sleeper.close().catch(() => {}));
      await sleep(30);
    },
    async nickClaims() {
      return ((await admin.cmd('KEYS', 'chat:nick:*')) as string[]).length;
    },
  }));
});
