import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BindError,
  createSocket,
  DatagramTooLargeError,
  type Datagram,
  InvalidArgumentError,
  MAX_PAYLOAD_IPV4,
  MAX_PAYLOAD_IPV6,
  SocketClosedError,
  SocketNotBoundError,
  type UdpSocket,
  UnsafePayloadError,
} from '../src/index.js';
import { skipTest } from '../../../test-support/peers.js';
import { probeBroadcastLoopback, probeIPv6, probeMulticastLoopback, sleep, waitFor } from './helpers.js';

const open: UdpSocket[] = [];
function socket(...args: Parameters<typeof createSocket>): UdpSocket {
  const s = createSocket(...args);
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

const hasIPv6 = await probeIPv6();
const multicast = await probeMulticastLoopback();
const broadcast = await probeBroadcastLoopback();

describe('sending and receiving on loopback', () => {
  it('echoes a datagram through message events with the sender in rinfo', async () => {
    const server = socket();
    const client = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    server.on('message', (data, rinfo) => void server.send(data, rinfo.port, rinfo.address));
    const clientAddress = await client.bind(0, '127.0.0.1');
    const reply = new Promise<[Buffer, number]>((resolve) =>
      client.once('message', (d, r) => resolve([d, r.port])),
    );
    await expect(client.send('hello', port, '127.0.0.1')).resolves.toBe(5);
    const [data, fromPort] = await reply;
    expect(data.toString()).toBe('hello');
    expect(fromPort).toBe(port);
    expect(server.stats.received).toBe(1);
    expect(server.stats.bytesReceived).toBe(5);
    expect(client.stats.sent).toBe(1);
    expect(clientAddress.port).toBeGreaterThan(0);
  });

  it('yields datagrams in order to for-await and ends the loop on close', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const client = socket();
    const received: string[] = [];
    const loop = (async () => {
      for await (const { data, rinfo } of server) {
        expect(rinfo.family).toBe('IPv4');
        received.push(data.toString());
        if (received.length === 3) await server.close();
      }
    })();
    for (const word of ['a', 'b', 'c']) await client.send(word, port, '127.0.0.1');
    await loop;
    expect(received).toEqual(['a', 'b', 'c']);
  });

  it('sends a list of chunks as one datagram', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const got = new Promise<Buffer>((resolve) => server.once('message', resolve));
    await socket().send([Buffer.from('ab'), new Uint8Array([0x63])], port, '127.0.0.1');
    expect((await got).toString()).toBe('abc');
  });

  it('bounds the iterator queue and counts what it drops', async () => {
    const server = socket({ queueLimit: 4 });
    const { port } = await server.bind(0, '127.0.0.1');
    const iterator = server.messages();
    const client = socket();
    for (let i = 0; i < 10; i++) await client.send(String(i), port, '127.0.0.1');
    await waitFor(() => server.stats.received === 10, '10 datagrams');
    expect(server.stats.dropped).toBe(6);
    const first: Datagram[] = [];
    for (let i = 0; i < 4; i++) first.push((await iterator.next()).value as Datagram);
    expect(first.map((d) => d.data.toString())).toEqual(['0', '1', '2', '3']);
    await iterator.return?.();
    expect(server.stats.dropped).toBe(6);
  });

  it('keeps the newest datagrams with overflow: drop-oldest', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const iterator = server.messages({ queueLimit: 3, overflow: 'drop-oldest' });
    const client = socket();
    for (let i = 0; i < 6; i++) await client.send(String(i), port, '127.0.0.1');
    await waitFor(() => server.stats.received === 6, '6 datagrams');
    const kept: string[] = [];
    for (let i = 0; i < 3; i++) kept.push(((await iterator.next()).value as Datagram).data.toString());
    expect(kept).toEqual(['3', '4', '5']);
  });

  it('uses a connected socket without port and host', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const client = socket();
    await client.connect(port, '127.0.0.1');
    expect(client.connected).toBe(true);
    expect(client.remoteAddress().port).toBe(port);
    const got = new Promise<Buffer>((resolve) => server.once('message', resolve));
    await client.send('connected');
    expect((await got).toString()).toBe('connected');
    await expect(client.send('x', port, '127.0.0.1')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('survives ICMP port-unreachable on a connected socket without an error listener', async () => {
    const closed = socket();
    const { port } = await closed.bind(0, '127.0.0.1');
    await closed.close();
    const client = socket();
    const warnings: Error[] = [];
    client.on('warning', (w) => warnings.push(w));
    await client.connect(port, '127.0.0.1');
    // Linux reports the ICMP error on the next send or receive, whichever comes first.
    await client.send('anyone?').catch(() => {});
    await sleep(50);
    const second = await client.send('anyone?').catch((e: unknown) => e);
    if (second instanceof Error) expect((second as { code?: string }).code).toBe('ERR_UDP_SEND');
    await waitFor(() => client.stats.receiveErrors + client.stats.sendErrors > 0, 'the refusal to surface');
    expect(client.closed).toBe(false);
    // The socket still works afterwards.
    const server = socket();
    const target = await server.bind(0, '127.0.0.1');
    client.disconnect();
    const got = new Promise<Buffer>((resolve) => server.once('message', resolve));
    // A second ICMP error may still be pending and is reported by the next send: retry a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (
        await client.send('still alive', target.port, '127.0.0.1').then(
          () => true,
          () => false,
        )
      )
        break;
    }
    expect((await got).toString()).toBe('still alive');
  });

  it('echoes over IPv6 on ::1', async (ctx) => {
    // Recorded, so the root summary says why this test did not run here.
    if (!hasIPv6) skipTest(ctx, '::1 is unavailable on this machine (no IPv6 loopback)');
    const server = socket('udp6');
    const { port, family } = await server.bind(0, '::1');
    expect(family).toBe('IPv6');
    server.on('message', (data, rinfo) => server.post(data, rinfo.port, rinfo.address));
    const client = socket({ type: 'udp6' });
    await client.bind(0, '::1');
    const reply = new Promise<Datagram>((resolve) =>
      client.once('message', (data, rinfo) => resolve({ data, rinfo })),
    );
    await client.send('v6', port, '::1');
    const { data, rinfo } = await reply;
    expect(data.toString()).toBe('v6');
    expect(rinfo.family).toBe('IPv6');
    expect(rinfo.address).toBe('::1');
  });
});

describe('size limits', () => {
  it('rejects more than 65,507 bytes on IPv4 before the kernel sees it', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const client = socket();
    await client.bind(0, '127.0.0.1');
    const err = await client
      .send(Buffer.alloc(MAX_PAYLOAD_IPV4 + 1), port, '127.0.0.1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatagramTooLargeError);
    expect((err as DatagramTooLargeError).code).toBe('ERR_UDP_DATAGRAM_TOO_LARGE');
    expect((err as DatagramTooLargeError).limit).toBe(65_507);
    expect(() => client.post('x'.repeat(MAX_PAYLOAD_IPV4 + 1), port, '127.0.0.1')).toThrow(
      DatagramTooLargeError,
    );
    expect(client.stats.sent).toBe(0);
    expect(client.stats.sendErrors).toBe(0);
    // Exactly the maximum goes through on loopback (MTU 65536).
    const got = new Promise<Buffer>((resolve) => server.once('message', resolve));
    await client.send(Buffer.alloc(MAX_PAYLOAD_IPV4, 7), port, '127.0.0.1');
    expect((await got).length).toBe(MAX_PAYLOAD_IPV4);
    expect(server.stats.received).toBe(1);
  });

  it('counts UTF-8 bytes, not characters, for strings', async () => {
    const client = socket({ maxPayload: 10 });
    await client.bind(0, '127.0.0.1');
    await expect(client.send('ééééé', 9, '127.0.0.1')).resolves.toBe(10);
    await expect(client.send('éééééé', 9, '127.0.0.1')).rejects.toBeInstanceOf(DatagramTooLargeError);
  });

  it('uses 65,527 on IPv6 and the IPv4 limit for IPv4-mapped destinations', async () => {
    const client = socket('udp6');
    expect(client.maxPayload).toBe(MAX_PAYLOAD_IPV6);
    const tooBig = await client.send(Buffer.alloc(MAX_PAYLOAD_IPV6 + 1), 9, '::1').catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(DatagramTooLargeError);
    expect((tooBig as DatagramTooLargeError).limit).toBe(65_527);
    const mapped = await client
      .send(Buffer.alloc(MAX_PAYLOAD_IPV4 + 1), 9, '::ffff:127.0.0.1')
      .catch((e) => e);
    expect((mapped as DatagramTooLargeError).limit).toBe(65_507);
  });

  it('rejects or warns above the safe payload when asked to', async () => {
    const server = socket();
    const { port } = await server.bind(0, '127.0.0.1');
    const strict = socket({ unsafePayload: 'reject' });
    const err = await strict.send(Buffer.alloc(1473), port, '127.0.0.1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePayloadError);
    expect((err as UnsafePayloadError).code).toBe('ERR_UDP_UNSAFE_PAYLOAD');
    await expect(strict.send(Buffer.alloc(1472), port, '127.0.0.1')).resolves.toBe(1472);

    const warned = socket({ unsafePayload: 'warn', safePayload: 100 });
    const warnings: Error[] = [];
    warned.on('warning', (w) => warnings.push(w));
    await warned.send(Buffer.alloc(200), port, '127.0.0.1');
    await warned.send(Buffer.alloc(200), port, '127.0.0.1');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toBeInstanceOf(UnsafePayloadError);
    await waitFor(() => server.stats.received === 3, 'three datagrams');
  });
});

describe('argument and lifecycle errors', () => {
  it('rejects bad ports, payloads and options with ERR_UDP_INVALID_ARGUMENT', async () => {
    const s = socket();
    await expect(s.send('x', 0, '127.0.0.1')).rejects.toMatchObject({ code: 'ERR_UDP_INVALID_ARGUMENT' });
    await expect(s.send('x', 70000, '127.0.0.1')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.send(42 as unknown as string, 9, '127.0.0.1')).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(s.bind(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => createSocket({ type: 'tcp' as 'udp4' })).toThrow(InvalidArgumentError);
    expect(() => createSocket({ maxPayload: 70_000 })).toThrow(InvalidArgumentError);
    expect(() => createSocket({ queueLimit: 0 })).toThrow(InvalidArgumentError);
  });

  it('reports an address in use as ERR_UDP_BIND with the errno in cause', async () => {
    const first = socket();
    const { port } = await first.bind(0, '127.0.0.1');
    const second = socket();
    const err = await second.bind(port, '127.0.0.1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BindError);
    expect((err as BindError).code).toBe('ERR_UDP_BIND');
    expect(((err as BindError).cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    await waitFor(() => second.closed, 'the failed socket to close');
  });

  it('needs a bound socket for address() and socket options', () => {
    const s = socket();
    expect(() => s.address()).toThrow(SocketNotBoundError);
    expect(() => s.setBroadcast(true)).toThrow(SocketNotBoundError);
    expect(() => s.addMembership('239.1.2.3')).toThrow(SocketNotBoundError);
  });

  it('refuses to send after close and closes idempotently', async () => {
    const s = socket();
    await s.bind(0, '127.0.0.1');
    const closing = s.close();
    expect(s.close()).toBe(closing);
    await closing;
    await expect(s.send('x', 9, '127.0.0.1')).rejects.toBeInstanceOf(SocketClosedError);
    expect(() => s.post('x', 9, '127.0.0.1')).toThrow(SocketClosedError);
    const iterator = s.messages();
    await expect(iterator.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('settles bind() and connect() that are still resolving a name when the socket closes', async () => {
    const binding = socket();
    const bind = binding.bind(0, 'localhost');
    const closed = binding.close();
    await expect(bind).rejects.toBeInstanceOf(SocketClosedError);
    await closed;
    const connecting = socket();
    const connect = connecting.connect(9, 'localhost');
    await connecting.close();
    await expect(connect).rejects.toBeInstanceOf(SocketClosedError);
  });

  it('closes when its AbortSignal fires', async () => {
    const controller = new AbortController();
    const s = socket({ signal: controller.signal });
    await s.bind(0, '127.0.0.1');
    controller.abort();
    await waitFor(() => s.closed, 'close on abort');
  });

  it('applies kernel buffer sizes from options and setters', async () => {
    const s = socket({ recvBufferSize: 65_536, sendBufferSize: 65_536 });
    await s.bind(0, '127.0.0.1');
    // Linux doubles the requested size for bookkeeping; other kernels store it as is.
    expect(s.getRecvBufferSize()).toBeGreaterThanOrEqual(65_536);
    expect(s.getSendBufferSize()).toBeGreaterThanOrEqual(65_536);
    s.setRecvBufferSize(131_072);
    expect(s.getRecvBufferSize()).toBeGreaterThanOrEqual(131_072);
    expect(() => s.setRecvBufferSize(0)).toThrow(InvalidArgumentError);
  });

  it('rejects non-multicast addresses for group membership', async () => {
    const s = socket();
    await s.bind(0);
    expect(() => s.addMembership('10.0.0.1')).toThrow(InvalidArgumentError);
    expect(() => s.addMembership('not-an-ip')).toThrow(InvalidArgumentError);
    expect(() => s.setTTL(0)).toThrow(InvalidArgumentError);
    expect(() => s.setMulticastTTL(256)).toThrow(InvalidArgumentError);
  });
});

describe('multicast and broadcast on loopback', () => {
  it('delivers to a joined group and stops after leaving it (or says why it cannot)', async (ctx) => {
    if (!multicast.ok) {
      console.warn(`[udp] MULTICAST UNAVAILABLE on this machine (${multicast.why}); see the broadcast test`);
      skipTest(ctx, `multicast unavailable: ${multicast.why}`);
    }
    const group = '239.255.41.236';
    const receiver = socket({ reuseAddr: true });
    const { port } = await receiver.bind(0, '0.0.0.0');
    receiver.addMembership(group, '127.0.0.1');
    const sender = socket({ multicastInterface: '127.0.0.1', multicastTTL: 1, multicastLoopback: true });
    await sender.bind(0);
    const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
    await sender.send('to the group', port, group);
    expect((await got).toString()).toBe('to the group');
    receiver.dropMembership(group, '127.0.0.1');
    const before = receiver.stats.received;
    await sender.send('after leaving', port, group);
    await sleep(200);
    expect(receiver.stats.received).toBe(before);
  });

  it('delivers broadcast only with the broadcast flag (or says why it cannot)', async (ctx) => {
    if (!broadcast.ok) {
      console.warn(`[udp] BROADCAST UNAVAILABLE on this machine (${broadcast.why}); unicast only`);
      skipTest(ctx, `broadcast unavailable: ${broadcast.why}`);
    }
    const receiver = socket();
    const { port } = await receiver.bind(0, '0.0.0.0');
    const noFlag = socket();
    await noFlag.bind(0);
    const err = await noFlag.send('x', port, '127.255.255.255').catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_UDP_SEND');
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('EACCES');
    const withFlag = socket({ broadcast: true });
    await withFlag.bind(0);
    const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
    await withFlag.send('to everyone', port, '127.255.255.255');
    expect((await got).toString()).toBe('to everyone');
  });

  it('counts and reports a failed post() instead of losing it or crashing', async () => {
    const s = socket();
    await s.bind(0);
    const warnings: Error[] = [];
    s.on('warning', (w) => warnings.push(w));
    // Broadcasting without SO_BROADCAST fails with EACCES in the kernel.
    s.post('x', 9, '255.255.255.255');
    await waitFor(() => warnings.length === 1, 'the failed post to be reported');
    expect(warnings[0]).toMatchObject({ code: 'ERR_UDP_SEND' });
    expect(s.stats).toMatchObject({ sent: 0, sendErrors: 1 });
    const errors: Error[] = [];
    s.on('error', (e) => errors.push(e));
    s.post('x', 9, '255.255.255.255');
    await waitFor(() => errors.length === 1, 'the error event once someone listens');
    expect(warnings).toHaveLength(1);
  });

  it('applies socket options when the first send binds implicitly', async (ctx) => {
    if (!broadcast.ok) {
      console.warn(`[udp] BROADCAST UNAVAILABLE (${broadcast.why}): implicit-bind options not tested`);
      skipTest(ctx, `broadcast unavailable: ${broadcast.why}`);
    }
    const receiver = socket();
    const { port } = await receiver.bind(0, '0.0.0.0');
    const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
    // Never bound explicitly: SO_BROADCAST must still be set before the datagram leaves.
    const sender = socket({ broadcast: true });
    await sender.send('implicit', port, '127.255.255.255');
    expect((await got).toString()).toBe('implicit');
    expect(sender.bound).toBe(true);
  });

  it('interoperates with a raw dgram peer', async () => {
    const raw = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', () => resolve()));
    raw.on('message', (data, rinfo) =>
      raw.send(Buffer.from(data.toString().toUpperCase()), rinfo.port, rinfo.address),
    );
    try {
      const ours = socket();
      await ours.bind(0, '127.0.0.1');
      const got = new Promise<Buffer>((resolve) => ours.once('message', resolve));
      await ours.send('shout', raw.address().port, '127.0.0.1');
      expect((await got).toString()).toBe('SHOUT');
    } finally {
      raw.close();
    }
  });
});
