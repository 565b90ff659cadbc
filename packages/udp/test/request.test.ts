import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { skipTest } from '../../../test-support/peers.js';
import {
  AbortError,
  createRequester,
  createSocket,
  decodeFrame,
  encodeFrame,
  HandlerTimeoutError,
  InvalidArgumentError,
  RemoteError,
  request,
  SocketClosedError,
  serve,
  TimeoutError,
  TooManyPendingError,
  type UdpSocket,
} from '../src/index.js';
import { createLossyRelay, probeIPv6, sleep, waitFor } from './helpers.js';

const open: { close(): unknown }[] = [];
function track<T extends { close(): unknown }>(thing: T): T {
  open.push(thing);
  return thing;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
});

async function bound(type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpSocket> {
  const socket = track(createSocket(type));
  await socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1');
  return socket;
}

const hasIPv6 = await probeIPv6();

describe('request/response', () => {
  it('answers a request and resolves with the reply, attempts and rtt', async () => {
    const server = await bound();
    serve(server, (data) => Buffer.from(data.toString().toUpperCase()));
    const client = createRequester(await bound());
    const reply = await client.request('ping', { port: server.address().port, host: '127.0.0.1' });
    expect(reply.data.toString()).toBe('PING');
    expect(reply.attempts).toBe(1);
    expect(reply.rtt).toBeGreaterThanOrEqual(0);
    expect(reply.rinfo.port).toBe(server.address().port);
    expect(client.stats).toMatchObject({ requests: 1, replies: 1, retransmits: 0 });
  });

  it('correlates many concurrent requests by id, answered out of order', async () => {
    const server = await bound();
    serve(server, async (data) => {
      await sleep(Math.floor(Math.random() * 30));
      return data;
    });
    const client = createRequester(await bound());
    const port = server.address().port;
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.request(`n${i}`, { port, host: '127.0.0.1' })),
    );
    expect(replies.map((r) => r.data.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    expect(client.pending).toBe(0);
  });

  // Fixed seeds replay known fault patterns; one fresh seed per run explores new ones. Every seed is
  // printed, and UDP_RELAY_SEED=<n> replays a failing one.
  const freshSeed = Number(process.env.UDP_RELAY_SEED ?? Math.floor(Math.random() * 0x100000000));
  it.each([0xc0ffee, 0x5eed0001, 0x5eed0002, freshSeed])(
    'completes concurrent requests, each handled once, through a relay that drops, duplicates and reorders (seed %i)',
    async (seed) => {
      console.info(`[udp] chaos relay seed ${seed} (replay with UDP_RELAY_SEED=${seed})`);
      const server = await bound();
      const runs = new Map<string, number>();
      const responder = serve(
        server,
        (data) => {
          const key = data.toString();
          runs.set(key, (runs.get(key) ?? 0) + 1);
          return Buffer.concat([Buffer.from('re:'), data]);
        },
        { maxReplays: 16 },
      );
      const relay = track(
        await createLossyRelay(server.address().port, { loss: 0.3, duplicate: 0.25, reorder: 0.3 }, seed),
      );
      const client = createRequester(await bound(), {
        defaults: {
          port: relay.port,
          host: '127.0.0.1',
          retries: 12,
          timeout: 20_000,
          backoff: { initial: 40, max: 400 },
        },
      });
      const count = 40;
      const replies = await Promise.all(
        Array.from({ length: count }, (_, i) => client.request(`request ${i}`)),
      );
      const where = `seed ${seed}`;
      expect(
        replies.map((r) => r.data.toString()),
        where,
      ).toEqual(Array.from({ length: count }, (_, i) => `re:request ${i}`));
      const total = relay.dropped + relay.forwarded;
      console.info(
        `[udp] seed ${seed}: dropped ${relay.dropped}, duplicated ${relay.duplicated}, delayed ${relay.delayed}` +
          ` (overtaken ${relay.overtook}) of ${total}; ${client.stats.retransmits} retransmits,` +
          ` ${client.stats.duplicates} duplicate replies, max attempts ${Math.max(...replies.map((r) => r.attempts))}`,
      );
      // The faults really happened...
      expect(relay.dropped, where).toBeGreaterThan(0);
      expect(relay.duplicated, where).toBeGreaterThan(0);
      expect(relay.overtook, where).toBeGreaterThan(0);
      expect(client.stats.retransmits, where).toBeGreaterThan(0);
      // ...and the handler still ran exactly once per request, however many copies arrived.
      expect(
        [...runs.values()].every((n) => n === 1),
        where,
      ).toBe(true);
      expect(runs.size, where).toBe(count);
      expect(responder.stats.handled, where).toBe(count);
      expect(responder.stats.cached + responder.stats.inProgress, where).toBeGreaterThan(0);
      // Every extra reply was recognised as a duplicate, none taken for a stranger's.
      expect(client.stats.unknown, where).toBe(0);
      expect(client.stats.duplicates + client.stats.late, where).toBeGreaterThan(0);
      expect(client.pending, where).toBe(0);
    },
    60_000,
  );

  it('rejects with ERR_UDP_TIMEOUT after the last retry when nobody answers', async () => {
    const silent = await bound();
    const client = createRequester(await bound());
    const started = performance.now();
    const err = await client
      .request('hello?', {
        port: silent.address().port,
        host: '127.0.0.1',
        retries: 3,
        timeout: 10_000,
        backoff: { initial: 30, factor: 2, max: 100, jitter: 0 },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('ERR_UDP_TIMEOUT');
    expect((err as TimeoutError).attempts).toBe(4);
    // Waits of 30 + 60 + 100 + 100 ms: well under the 10 s deadline.
    expect(performance.now() - started).toBeLessThan(8000);
    await waitFor(() => silent.stats.received === 4, 'four attempts to reach the silent peer');
    expect(client.stats).toMatchObject({ timeouts: 1, retransmits: 3 });
  });

  it('honours the overall deadline even with retries left', async () => {
    const silent = await bound();
    const client = createRequester(await bound());
    const err = await client
      .request('x', { port: silent.address().port, host: '127.0.0.1', retries: 100, timeout: 300 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).attempts).toBeLessThan(10);
  });

  it('drops duplicate and late replies and counts them', async () => {
    const peer = dgram.createSocket('udp4');
    track({ close: () => new Promise<void>((resolve) => peer.close(() => resolve())) });
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
    let mode: 'twice' | 'late' = 'twice';
    peer.on('message', (data, rinfo) => {
      const frame = decodeFrame(data);
      if (frame.kind !== 'request') return;
      const reply = encodeFrame('reply', frame.id, `answer ${frame.id}`);
      if (mode === 'twice') {
        peer.send(reply, rinfo.port, rinfo.address);
        peer.send(reply, rinfo.port, rinfo.address);
      } else setTimeout(() => peer.send(reply, rinfo.port, rinfo.address), 200);
    });
    const client = createRequester(await bound());
    const port = peer.address().port;
    const first = await client.request('a', { port, host: '127.0.0.1' });
    expect(first.data.toString()).toMatch(/^answer /);
    await waitFor(() => client.stats.duplicates === 1, 'the duplicate reply');
    mode = 'late';
    await expect(
      client.request('b', { port, host: '127.0.0.1', retries: 0, timeout: 50 }),
    ).rejects.toBeInstanceOf(TimeoutError);
    await waitFor(() => client.stats.late === 1, 'the late reply');
    expect(client.stats.replies).toBe(1);
  });

  it('ignores replies from a stranger and garbage without failing the request', async () => {
    const server = await bound();
    const stranger = await bound();
    const client = createRequester(await bound());
    serve(server, async (data, _rinfo, { id }) => {
      // A third party races a forged reply with the right id: it must not be accepted.
      await stranger.send(encodeFrame('reply', id, 'forged'), client.socket.address().port, '127.0.0.1');
      await stranger.send(
        Buffer.from([0xae, 0x55, 9, 9, 9, 9, 9, 9]),
        client.socket.address().port,
        '127.0.0.1',
      );
      await sleep(20);
      return data;
    });
    const reply = await client.request('genuine', { port: server.address().port, host: '127.0.0.1' });
    expect(reply.data.toString()).toBe('genuine');
    expect(client.stats.unknown).toBe(1);
    expect(client.stats.malformed).toBe(1);
  });

  it('turns a failing handler into ERR_UDP_REMOTE, with the message only when exposed', async () => {
    const server = await bound();
    const failing = serve(server, () => {
      throw new Error('database on fire');
    });
    const errors: unknown[] = [];
    failing.on('handlerError', (err) => errors.push(err));
    const client = createRequester(await bound());
    const port = server.address().port;
    const hidden = await client.request('x', { port, host: '127.0.0.1' }).catch((e: unknown) => e);
    expect(hidden).toBeInstanceOf(RemoteError);
    expect((hidden as RemoteError).code).toBe('ERR_UDP_REMOTE');
    expect((hidden as Error).message).not.toContain('database');
    expect(errors).toHaveLength(1);
    failing.close();
    serve(server, async () => Promise.reject(new Error('database on fire')), { exposeErrors: true });
    const shown = await client.request('y', { port, host: '127.0.0.1' }).catch((e: unknown) => e);
    expect((shown as Error).message).toContain('database on fire');
  });

  it('answers with an error on handlerTimeout and frees the slot once the aborted handler settles', async () => {
    const server = await bound();
    const responder = serve(
      server,
      (data, _rinfo, request) =>
        data.toString() === 'hang'
          ? new Promise<undefined>((resolve) =>
              request.signal.addEventListener('abort', () => resolve(undefined)),
            )
          : data,
      { handlerTimeout: 100, maxConcurrent: 1, cacheSize: 16 },
    );
    const errors: unknown[] = [];
    responder.on('handlerError', (err) => errors.push(err));
    const client = createRequester(await bound());
    const port = server.address().port;
    await expect(client.request('hang', { port, host: '127.0.0.1' })).rejects.toBeInstanceOf(RemoteError);
    expect(errors[0]).toBeInstanceOf(HandlerTimeoutError);
    expect((errors[0] as HandlerTimeoutError).code).toBe('ERR_UDP_HANDLER_TIMEOUT');
    // The only concurrency slot is free again.
    expect((await client.request('next', { port, host: '127.0.0.1' })).data.toString()).toBe('next');
  });

  it('sends no reply when the handler returns null, and an empty one for undefined', async () => {
    const server = await bound();
    serve(server, (data) => (data.toString() === 'ignore me' ? null : undefined));
    const client = createRequester(await bound());
    const port = server.address().port;
    const empty = await client.request('hi', { port, host: '127.0.0.1' });
    expect(empty.data.length).toBe(0);
    await expect(
      client.request('ignore me', { port, host: '127.0.0.1', retries: 1, timeout: 200 }),
    ).rejects.toBeInstanceOf(TimeoutError);
  });

  it('keeps serving after garbage datagrams', async () => {
    const server = await bound();
    const responder = serve(server, (data) => data);
    const junk = await bound();
    const port = server.address().port;
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from('hello'),
      Buffer.from([0xae, 0x55, 7, 0, 0, 0, 0, 1]),
    ]) {
      await junk.send(bytes, port, '127.0.0.1');
    }
    const client = createRequester(await bound());
    expect((await client.request('ok', { port, host: '127.0.0.1' })).data.toString()).toBe('ok');
    expect(responder.stats.malformed).toBe(1);
  });

  it('aborts through an AbortSignal and rejects when the socket closes', async () => {
    const silent = await bound();
    const socket = await bound();
    const client = createRequester(socket);
    const port = silent.address().port;
    const controller = new AbortController();
    const aborted = client.request('x', { port, host: '127.0.0.1', signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    const pending = client.request('y', { port, host: '127.0.0.1' });
    await socket.close();
    await expect(pending).rejects.toBeInstanceOf(SocketClosedError);
    await expect(client.request('z', { port, host: '127.0.0.1' })).rejects.toBeInstanceOf(SocketClosedError);
  });

  it('limits requests in flight and validates options', async () => {
    const silent = await bound();
    const client = createRequester(await bound(), { maxPending: 2 });
    const port = silent.address().port;
    const options = { port, host: '127.0.0.1', retries: 0, timeout: 200 };
    const a = client.request('a', options).catch(() => undefined);
    const b = client.request('b', options).catch(() => undefined);
    await expect(client.request('c', options)).rejects.toBeInstanceOf(TooManyPendingError);
    await Promise.all([a, b]);
    await expect(client.request('d', { host: '127.0.0.1' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.request('d', { port, timeout: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.request('d', { port, backoff: { factor: 0.5 } })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('works over a connected socket and with the one-shot request()', async () => {
    const server = await bound();
    serve(server, (data) => data);
    const socket = await bound();
    await socket.connect(server.address().port, '127.0.0.1');
    const connected = createRequester(socket);
    expect((await connected.request('via connect')).data.toString()).toBe('via connect');
    const oneShot = await request('one shot', { port: server.address().port, host: '127.0.0.1' });
    expect(oneShot.data.toString()).toBe('one shot');
  });

  it('lets two peers each serve and request over the same socket', async () => {
    const a = await bound();
    const b = await bound();
    serve(a, (data) => `a got ${data}`);
    serve(b, (data) => `b got ${data}`);
    const fromA = createRequester(a);
    const fromB = createRequester(b);
    const [toB, toA] = await Promise.all([
      fromA.request('hi', { port: b.address().port, host: '127.0.0.1' }),
      fromB.request('hey', { port: a.address().port, host: '127.0.0.1' }),
    ]);
    expect(toB.data.toString()).toBe('b got hi');
    expect(toA.data.toString()).toBe('a got hey');
    expect(fromA.stats.unknown + fromB.stats.unknown).toBe(0);
  });

  it('answers requests over IPv6', async (ctx) => {
    if (!hasIPv6) skipTest(ctx, '::1 is unavailable on this machine (no IPv6 loopback)');
    const server = await bound('udp6');
    serve(server, (data) => data);
    const reply = await request('six', { port: server.address().port, host: '::1' });
    expect(reply.data.toString()).toBe('six');
    expect(reply.rinfo.family).toBe('IPv6');
  });

  it('runs the handler once per request even when it is slower than the retransmissions', async () => {
    const server = await bound();
    let runs = 0;
    const responder = serve(server, async (data) => {
      runs++;
      await sleep(250);
      return data;
    });
    const client = createRequester(await bound());
    const reply = await client.request('slow', {
      port: server.address().port,
      host: '127.0.0.1',
      backoff: { initial: 40, factor: 1, max: 40, jitter: 0 },
      retries: 20,
    });
    expect(reply.data.toString()).toBe('slow');
    expect(runs).toBe(1);
    expect(responder.stats.inProgress).toBeGreaterThan(0);
  });
});
