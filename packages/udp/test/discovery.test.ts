import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { skipTest } from '../../../test-support/peers.js';
import {
  type Announcer,
  announce,
  DiscoveryEncodeError,
  type DiscoveryInvalidReason,
  decodeDiscoveryMessage,
  discover,
  encodeDiscoveryMessage,
  InvalidArgumentError,
} from '../src/index.js';
import { probeBroadcastLoopback, probeIPv6, probeMulticastLoopback, waitFor } from './helpers.js';

const announcers: Announcer[] = [];
const raws: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(announcers.splice(0).map((a) => a.close()));
  for (const raw of raws.splice(0)) raw.close();
});

async function started(options: Parameters<typeof announce>[0]): Promise<Announcer> {
  const announcer = await announce(options);
  announcers.push(announcer);
  return announcer;
}

async function rawSocket(port = 0, address = '127.0.0.1', reuseAddr = false): Promise<dgram.Socket> {
  const raw = dgram.createSocket({ type: 'udp4', reuseAddr });
  raws.push(raw);
  await new Promise<void>((resolve) => raw.bind(port, address, () => resolve()));
  return raw;
}

const CHAT_META = { ws: 'ws://host:8080/ws', tcp: 'tcp://host:8124', caFingerprint: 'AB:CD:EF:01' };
const multicast = await probeMulticastLoopback();
const broadcast = await probeBroadcastLoopback();
const hasIPv6 = await probeIPv6();

/** Loopback only: never touch the real LAN from tests. */
const LOOPBACK = { discoveryPort: 0, interfaces: ['127.0.0.1'] };

describe('discovery over unicast', () => {
  it('finds an announced service by querying a known host and port', async () => {
    const server = await started({
      ...LOOPBACK,
      service: 'net-chat',
      port: 8080,
      meta: CHAT_META,
      multicast: false,
      broadcast: false,
    });
    const found = await discover({
      service: 'net-chat',
      host: '127.0.0.1',
      discoveryPort: server.discoveryPort,
      timeout: 1000,
    });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      service: 'net-chat',
      instance: server.instance,
      host: '127.0.0.1',
      port: 8080,
      ttl: 120,
      meta: CHAT_META,
    });
    expect(server.stats.queries).toBeGreaterThanOrEqual(1);
    expect(server.stats.answers).toBeGreaterThanOrEqual(1);
  });

  it('stops early once `limit` instances answered and reports each via onService', async () => {
    const server = await started({
      ...LOOPBACK,
      service: 'printer',
      port: 631,
      multicast: false,
      broadcast: false,
    });
    const seen: string[] = [];
    const started_ = performance.now();
    const found = await discover({
      service: 'printer',
      host: '127.0.0.1',
      discoveryPort: server.discoveryPort,
      timeout: 10_000,
      limit: 1,
      onService: (s) => seen.push(s.instance),
    });
    expect(performance.now() - started_).toBeLessThan(5000);
    expect(found.map((s) => s.instance)).toEqual([server.instance]);
    expect(seen).toEqual([server.instance]);
  });

  it('answers only queries for its own service, or for any service', async () => {
    const server = await started({
      ...LOOPBACK,
      service: 'net-chat',
      port: 1,
      multicast: false,
      broadcast: false,
    });
    const target = { host: '127.0.0.1', discoveryPort: server.discoveryPort, timeout: 300, queries: 1 };
    expect(await discover({ ...target, service: 'other' })).toEqual([]);
    expect((await discover({ ...target })).map((s) => s.service)).toEqual(['net-chat']);
    expect((await discover({ ...target, service: '*' })).map((s) => s.service)).toEqual(['net-chat']);
  });

  it('counts and ignores malformed and oversized datagrams, and keeps answering', async () => {
    const server = await started({
      ...LOOPBACK,
      service: 'net-chat',
      port: 2,
      multicast: false,
      broadcast: false,
    });
    const invalid: DiscoveryInvalidReason[] = [];
    server.on('invalid', (reason) => invalid.push(reason));
    const attacker = await rawSocket();
    const port = server.discoveryPort;
    const query = encodeDiscoveryMessage({ type: 'query', service: 'net-chat', queryId: 5, padding: 100 });
    const garbage = [
      Buffer.from('hello, world'),
      Buffer.alloc(2000, 1),
      Buffer.concat([query.subarray(0, 4), Buffer.from([9]), query.subarray(5)]),
      Buffer.concat([query, Buffer.from([1])]),
    ];
    for (const bytes of garbage) attacker.send(bytes, port, '127.0.0.1');
    await waitFor(() => server.stats.invalidTotal === 4, 'four invalid datagrams to be counted');
    expect(server.stats.invalid).toEqual({
      'bad-magic': 1,
      'too-large': 1,
      'unsupported-version': 1,
      'trailing-bytes': 1,
    });
    expect(invalid).toHaveLength(4);
    const found = await discover({
      service: 'net-chat',
      host: '127.0.0.1',
      discoveryPort: port,
      timeout: 1000,
    });
    expect(found).toHaveLength(1);
  });

  it('ignores malformed answers on the client side and reports them', async () => {
    const fake = await rawSocket();
    const instance = '0123456789abcdef';
    fake.on('message', (data, rinfo) => {
      const query = decodeDiscoveryMessage(data);
      if (query.type !== 'query') return;
      const good = encodeDiscoveryMessage({
        type: 'announce',
        service: 'net-chat',
        instance,
        port: 9,
        ttl: 5,
        queryId: query.queryId,
        meta: {},
      });
      fake.send(Buffer.from('{"service":"net-chat"}'), rinfo.port, rinfo.address);
      fake.send(good.subarray(0, good.length - 1), rinfo.port, rinfo.address);
      fake.send(good, rinfo.port, rinfo.address);
      // An answer to someone else's query is not ours.
      fake.send(
        encodeDiscoveryMessage({
          ...decodeAnnounce(good),
          instance: 'ffffffffffffffff',
          queryId: (query.queryId ^ 1) >>> 0,
        }),
        rinfo.port,
        rinfo.address,
      );
    });
    const reasons: string[] = [];
    const found = await discover({
      service: 'net-chat',
      host: '127.0.0.1',
      discoveryPort: fake.address().port,
      timeout: 500,
      queries: 1,
      onInvalid: (reason) => reasons.push(reason),
    });
    expect(found.map((s) => s.instance)).toEqual([instance]);
    expect(reasons.sort()).toEqual(['bad-magic', 'truncated']);
  });

  it('does not answer a tiny query with a much larger answer (no amplification)', async () => {
    const server = await started({
      ...LOOPBACK,
      service: 'net-chat',
      port: 3,
      meta: { blob: 'x'.repeat(600) },
      multicast: false,
      broadcast: false,
    });
    const client = await rawSocket();
    let answers = 0;
    client.on('message', () => answers++);
    client.send(
      encodeDiscoveryMessage({ type: 'query', service: 'net-chat', queryId: 1 }),
      server.discoveryPort,
    );
    await waitFor(() => server.stats.suppressed === 1, 'the query to be suppressed');
    // The library's own client pads its queries, so it still gets the answer.
    const found = await discover({
      service: 'net-chat',
      host: '127.0.0.1',
      discoveryPort: server.discoveryPort,
      limit: 1,
    });
    expect(found[0]?.meta.blob).toHaveLength(600);
    expect(answers).toBe(0);
  });

  it('refuses invalid announcements up front with clear errors', async () => {
    await expect(announce({ ...LOOPBACK, service: 'Bad Name', port: 1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(announce({ ...LOOPBACK, service: 'ok', port: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    const tooBig = await announce({
      ...LOOPBACK,
      service: 'ok',
      port: 1,
      meta: { k: 'v'.repeat(2000) },
    }).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(DiscoveryEncodeError);
    expect((tooBig as DiscoveryEncodeError).code).toBe('ERR_UDP_DISCOVERY_ENCODE');
    await expect(discover({ service: 'net-chat', discoveryPort: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(discover({ service: 'no spaces', host: '127.0.0.1' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('resolves with what was found when aborted', async () => {
    const controller = new AbortController();
    const silent = await rawSocket();
    const pending = discover({
      host: '127.0.0.1',
      discoveryPort: silent.address().port,
      timeout: 30_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).resolves.toEqual([]);
  });

  it('works over IPv6 unicast on ::1', async (ctx) => {
    if (!hasIPv6) skipTest(ctx, '::1 is unavailable on this machine (no IPv6 loopback)');
    const server = await started({
      type: 'udp6',
      discoveryPort: 0,
      bindAddress: '::1',
      service: 'net-chat',
      port: 8080,
      multicast: false,
      broadcast: false,
    });
    const found = await discover({
      type: 'udp6',
      host: '::1',
      discoveryPort: server.discoveryPort,
      timeout: 1000,
    });
    expect(found).toHaveLength(1);
    expect(found[0]?.host).toBe('::1');
  });
});

describe('discovery over multicast and broadcast on loopback', () => {
  it('finds two announcers sharing the discovery port through the multicast group', async (ctx) => {
    if (!multicast.ok) {
      console.warn(
        `[udp] MULTICAST UNAVAILABLE: ${multicast.why}; the broadcast and unicast tests cover discovery`,
      );
      skipTest(ctx, `multicast unavailable: ${multicast.why}`);
    }
    const first = await started({ ...LOOPBACK, service: 'net-chat', port: 8080, broadcast: false });
    expect(first.multicastInterfaces).toEqual(['127.0.0.1']);
    const second = await started({
      ...LOOPBACK,
      discoveryPort: first.discoveryPort,
      service: 'net-chat',
      port: 8081,
      broadcast: false,
    });
    const found = await discover({
      service: 'net-chat',
      discoveryPort: first.discoveryPort,
      interfaces: ['127.0.0.1'],
      broadcast: false,
      timeout: 1000,
    });
    expect(found.map((s) => s.port).sort()).toEqual([8080, 8081]);
    // With discoveryPort 0 the start announcements went to the port actually bound.
    expect(first.stats.sent).toBeGreaterThan(0);
    expect(first.stats.sendErrors).toBe(0);
    expect(new Set(found.map((s) => s.instance))).toEqual(new Set([first.instance, second.instance]));
  });

  it('finds an announcer through broadcast when multicast is off (the fallback)', async (ctx) => {
    if (!broadcast.ok) {
      console.warn(`[udp] BROADCAST UNAVAILABLE: ${broadcast.why}; only the unicast tests cover discovery`);
      skipTest(ctx, `broadcast unavailable: ${broadcast.why}`);
    }
    const server = await started({ ...LOOPBACK, service: 'net-chat', port: 8124, multicast: false });
    const found = await discover({
      service: 'net-chat',
      discoveryPort: server.discoveryPort,
      interfaces: ['127.0.0.1'],
      multicast: false,
      timeout: 1000,
    });
    expect(found.map((s) => s.instance)).toEqual([server.instance]);
  });

  it('announces on start and says goodbye on close to passive listeners', async (ctx) => {
    if (!multicast.ok && !broadcast.ok) {
      console.warn(
        '[udp] neither multicast nor broadcast works on lo: unsolicited announcements cannot be tested',
      );
      skipTest(ctx, 'no multicast or broadcast on loopback');
    }
    // Reserve a port with a passive listener first; the announcer then shares it (SO_REUSEADDR).
    const listener = await rawSocket(0, '0.0.0.0', true);
    if (multicast.ok) listener.addMembership('239.255.41.234', '127.0.0.1');
    const heard: string[] = [];
    listener.on('message', (data) => {
      const message = decodeDiscoveryMessage(data);
      if (message.type === 'announce' || message.type === 'bye')
        heard.push(`${message.type}:${message.instance}`);
    });
    const server = await announce({
      discoveryPort: listener.address().port,
      interfaces: ['127.0.0.1'],
      multicast: multicast.ok,
      broadcast: !multicast.ok,
      service: 'net-chat',
      port: 8080,
    });
    await waitFor(() => heard.includes(`announce:${server.instance}`), 'the start announcement');
    await server.update({ ws: 'ws://changed' });
    expect(server.meta).toEqual({ ws: 'ws://changed' });
    await server.close();
    await waitFor(() => heard.includes(`bye:${server.instance}`), 'the goodbye');
    console.info(`[udp] passive listener heard announce/bye via ${multicast.ok ? 'multicast' : 'broadcast'}`);
  });
});

function decodeAnnounce(bytes: Buffer) {
  const message = decodeDiscoveryMessage(bytes);
  if (message.type !== 'announce') throw new Error('expected an announcement');
  return message;
}
