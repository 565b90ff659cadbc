import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRequester,
  createSocket,
  decodeFrame,
  encodeFrame,
  InvalidArgumentError,
  serve,
  type UdpSocket,
} from '../src/index.js';
import { ReplyCache } from '../src/reply-cache.js';
import { sleep, waitFor } from './helpers.js';

const open: { close(): unknown }[] = [];
function track<T extends { close(): unknown }>(thing: T): T {
  open.push(thing);
  return thing;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
});

async function bound(host = '127.0.0.1'): Promise<UdpSocket> {
  const socket = track(createSocket('udp4'));
  await socket.bind(0, host);
  return socket;
}

/** A plain dgram socket (the attacker's or a hand-written client's). */
async function raw(host = '127.0.0.1', port = 0): Promise<dgram.Socket & { received: Buffer[] }> {
  const socket = Object.assign(dgram.createSocket('udp4'), { received: [] as Buffer[] });
  socket.on('message', (data) => socket.received.push(data));
  await new Promise<void>((resolve) => socket.bind(port, host, () => resolve()));
  track({ close: () => new Promise<void>((resolve) => socket.close(() => resolve())) });
  return socket;
}

describe('requester: forged replies', () => {
  it('does not accept a reply from another address when host is a name (localhost)', async () => {
    const server = await raw('127.0.0.1');
    // Same port as the server, another address: only the address tells them apart.
    const attacker = await raw('127.0.0.2', server.address().port);
    const client = await bound();
    const requester = createRequester(client);
    server.on('message', (data, rinfo) => {
      const frame = decodeFrame(data);
      if (frame.kind !== 'request') return;
      // The attacker knows (or guessed) the id and answers first, from 127.0.0.2.
      attacker.send(encodeFrame('reply', frame.id, 'forged'), rinfo.port, '127.0.0.1');
      setTimeout(
        () => server.send(encodeFrame('reply', frame.id, 'genuine'), rinfo.port, rinfo.address),
        150,
      );
    });
    const reply = await requester.request('hello', {
      port: server.address().port,
      host: 'localhost',
      retries: 0,
      timeout: 3000,
    });
    expect(reply.data.toString()).toBe('genuine');
    expect(reply.rinfo.address).toBe('127.0.0.1');
    expect(requester.stats.unknown).toBeGreaterThanOrEqual(1);
  });

  it('uses unpredictable ids: the next id is not the previous one plus one', async () => {
    const server = await raw();
    const ids: number[] = [];
    server.on('message', (data, rinfo) => {
      const frame = decodeFrame(data);
      if (frame.kind !== 'request') return;
      ids.push(frame.id);
      server.send(encodeFrame('reply', frame.id, ''), rinfo.port, rinfo.address);
    });
    const requester = createRequester(await bound());
    for (let i = 0; i < 40; i++)
      await requester.request('x', { port: server.address().port, host: '127.0.0.1' });
    let sequential = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i] === (ids[i - 1]! + 1) >>> 0) sequential++;
    expect(ids.length).toBe(40);
    expect(sequential).toBeLessThan(2);
    expect(new Set(ids.map((id) => id >>> 24)).size).toBeGreaterThan(10); // spread over the whole range
  });
});

describe('responder: one handler run per request', () => {
  it('refuses cacheSize <= maxConcurrent', async () => {
    const server = await bound();
    expect(() => serve(server, () => 'x', { cacheSize: 8, maxConcurrent: 8 })).toThrow(InvalidArgumentError);
    expect(() => serve(server, () => 'x', { cacheSize: 8, maxConcurrent: 8 })).toThrow(/cacheSize/);
  });

  it('never evicts a running handler: a retransmission after many other requests is not re-run', async () => {
    const server = await bound();
    const runs = new Map<string, number>();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const responder = serve(
      server,
      async (data, rinfo, request) => {
        const key = `${rinfo.port}/${request.id}`;
        runs.set(key, (runs.get(key) ?? 0) + 1);
        if (data.toString() === 'slow') await released;
        return 'ok';
      },
      { cacheSize: 16, maxConcurrent: 8, handlerTimeout: 20_000 },
    );
    const port = server.address().port;
    const slowClient = await raw();
    const slowRequest = encodeFrame('request', 7, 'slow');
    slowClient.send(slowRequest, port, '127.0.0.1');
    await waitFor(() => responder.stats.handled === 1, 'slow handler started');
    // Many fast requests from another peer push the ring cursor over the running slot several times.
    const other = await raw();
    for (let i = 0; i < 100; i++) {
      other.send(encodeFrame('request', 1000 + i, 'fast'), port, '127.0.0.1');
      await waitFor(() => other.received.length === i + 1, `fast reply ${i}`);
    }
    slowClient.send(slowRequest, port, '127.0.0.1'); // the client's retransmission
    await sleep(100);
    release();
    await waitFor(() => slowClient.received.length >= 1, 'slow reply');
    expect(runs.get(`${slowClient.address().port}/7`)).toBe(1);
    expect(responder.stats.inProgress).toBe(1);
  });

  it('keeps the entry of a timed-out handler that still runs: a late retransmission gets the cached error', async () => {
    const server = await bound();
    let slowRuns = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const responder = serve(
      server,
      async (data) => {
        if (data.toString() !== 'slow') return 'ok';
        slowRuns++;
        await released; // ignores its aborted signal
        return 'late';
      },
      { cacheSize: 16, maxConcurrent: 8, handlerTimeout: 50 },
    );
    const port = server.address().port;
    const slowClient = await raw();
    const slowRequest = encodeFrame('request', 7, 'slow');
    slowClient.send(slowRequest, port, '127.0.0.1');
    await waitFor(() => slowClient.received.length === 1, 'error reply after handlerTimeout');
    expect(decodeFrame(slowClient.received[0]!).kind).toBe('error');
    const other = await raw();
    for (let i = 0; i < 100; i++) {
      other.send(encodeFrame('request', 1000 + i, 'fast'), port, '127.0.0.1');
      await waitFor(() => other.received.length === i + 1, `fast reply ${i}`);
    }
    slowClient.send(slowRequest, port, '127.0.0.1'); // the error reply was "lost": retransmission
    await waitFor(() => slowClient.received.length === 2, 'replayed error reply');
    expect(decodeFrame(slowClient.received[1]!).kind).toBe('error');
    expect(slowRuns).toBe(1);
    expect(responder.running).toBe(1);
    release();
    await waitFor(() => responder.running === 0, 'slow handler settled');
  });

  it('reply cache: running slots are never evicted; a full cache refuses the insert', () => {
    const cache = new ReplyCache(4);
    for (let id = 0; id < 4; id++) expect(cache.insert('10.0.0.1', 1, id)).not.toBe(-1);
    expect(cache.insert('10.0.0.1', 1, 99)).toBe(-1);
    for (let id = 0; id < 4; id++) expect(cache.find('10.0.0.1', 1, id)).not.toBe(-1);
    const slot = cache.find('10.0.0.1', 1, 2);
    cache.settle(slot, cache.generation(slot), null, 1);
    // Settled (answered after a timeout) but its handler is still running: still not evictable.
    expect(cache.insert('10.0.0.1', 1, 99)).toBe(-1);
    cache.release(slot, cache.generation(slot));
    expect(cache.insert('10.0.0.1', 1, 99)).toBe(slot);
    expect(cache.find('10.0.0.1', 1, 2)).toBe(-1);
  });
});

describe('responder: amplification', () => {
  it('replays a cached reply a bounded number of times per (peer, id)', async () => {
    const server = await bound();
    const responder = serve(server, () => Buffer.alloc(8_000, 1));
    const attacker = await raw();
    const request = encodeFrame('request', 42, '');
    for (let i = 0; i < 200; i++) {
      attacker.send(request, server.address().port, '127.0.0.1');
      if (i % 20 === 19) await sleep(5);
    }
    await waitFor(() => responder.stats.handled === 1, 'first request handled');
    await sleep(200);
    // One answer plus the default 8 replays, not 200 answers of 8,008 bytes.
    expect(attacker.received.length).toBe(9);
    expect(responder.stats.replaysRefused).toBeGreaterThan(100);
  });

  it('rate-limits each source (loopback included on request)', async () => {
    const server = await bound();
    const responder = serve(server, () => 'pong', { rateLimit: { rate: 10, burst: 20, loopback: true } });
    const attacker = await raw();
    for (let i = 0; i < 100; i++)
      attacker.send(encodeFrame('request', i, ''), server.address().port, '127.0.0.1');
    await sleep(300);
    expect(responder.stats.handled).toBeGreaterThanOrEqual(20);
    expect(responder.stats.handled).toBeLessThanOrEqual(30);
    expect(responder.stats.rateLimited).toBe(100 - responder.stats.handled);
    expect(attacker.received.length).toBe(responder.stats.handled);
  });

  it('caps reply size at maxAmplification times the request size', async () => {
    const server = await bound();
    const responder = serve(server, () => Buffer.alloc(8_000, 1), { maxAmplification: 2 });
    const requester = createRequester(await bound());
    const port = server.address().port;
    await expect(requester.request('', { port, host: '127.0.0.1', retries: 0 })).rejects.toMatchObject({
      code: 'ERR_UDP_REMOTE',
    });
    expect(responder.stats.amplificationRefused).toBe(1);
    // A client that pads its request (as discovery queries do) gets the full reply.
    const padded = await requester.request(Buffer.alloc(4_000), { port, host: '127.0.0.1', retries: 0 });
    expect(padded.data.byteLength).toBe(8_000);
  });
});

describe('responder: hung handlers', () => {
  it('aborts the handler signal on handlerTimeout and counts it until it settles', async () => {
    const server = await bound();
    let started = 0;
    let aborted = 0;
    const responder = serve(
      server,
      (_data, _rinfo, request) => {
        started++;
        request.signal.addEventListener('abort', () => aborted++);
        return new Promise<never>(() => {}); // never settles, ignores the signal
      },
      { maxConcurrent: 4, cacheSize: 64, handlerTimeout: 50 },
    );
    const client = await raw();
    for (let i = 0; i < 40; i++) {
      client.send(encodeFrame('request', i, ''), server.address().port, '127.0.0.1');
      await sleep(10);
    }
    await sleep(200);
    expect(started).toBe(4);
    expect(aborted).toBe(4);
    expect(responder.stats.overloaded).toBe(36);
  });

  it('frees the slot once a timed-out handler settles', async () => {
    const server = await bound();
    let started = 0;
    serve(
      server,
      (_data, _rinfo, request) => {
        started++;
        return new Promise<string>((resolve) =>
          request.signal.addEventListener('abort', () => resolve('late')),
        );
      },
      { maxConcurrent: 2, cacheSize: 64, handlerTimeout: 30 },
    );
    const client = await raw();
    for (let i = 0; i < 10; i++) {
      client.send(encodeFrame('request', i, ''), server.address().port, '127.0.0.1');
      await sleep(60);
    }
    expect(started).toBeGreaterThan(4);
  });
});
