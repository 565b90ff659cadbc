import fc from 'fast-check';
import { afterEach, expect, it } from 'vitest';
import {
  type Announcer,
  announce,
  createRequester,
  createSocket,
  discover,
  encodeFrame,
  serve,
  type UdpSocket,
} from '../src/index.js';
import { waitFor } from './helpers.js';

const sockets: UdpSocket[] = [];
const announcers: Announcer[] = [];
afterEach(async () => {
  await Promise.all([
    ...sockets.splice(0).map((s) => s.close()),
    ...announcers.splice(0).map((a) => a.close()),
  ]);
});

async function bound(): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  await socket.bind(0, '127.0.0.1');
  return socket;
}

/** Arbitrary datagrams, biased towards our own magics so the deeper decoder paths get exercised. */
const datagram = fc.oneof(
  fc.uint8Array({ maxLength: 1600 }),
  fc.uint8Array({ maxLength: 64 }).map((rest) => Buffer.concat([Buffer.from([0xae, 0x55, 1]), rest])),
  fc.uint8Array({ maxLength: 200 }).map((rest) => Buffer.concat([Buffer.from('NETD\x01'), rest])),
);

it('keeps a responder and an announcer answering while random datagrams rain on them', async () => {
  const server = await bound();
  const responder = serve(server, (data) => data);
  const announcer = await announce({
    service: 'fuzzed',
    port: 1,
    discoveryPort: 0,
    bindAddress: '127.0.0.1',
    multicast: false,
    broadcast: false,
  });
  announcers.push(announcer);
  const attacker = await bound();
  const samples = fc.sample(datagram, { numRuns: 400, seed: 42 });
  // Paced in small bursts so the kernel's receive buffer never overflows and every datagram counts.
  for (let i = 0; i < samples.length; i += 20) {
    for (const bytes of samples.slice(i, i + 20)) {
      attacker.post(bytes, server.address().port, '127.0.0.1');
      attacker.post(bytes, announcer.discoveryPort, '127.0.0.1');
    }
    const expected = Math.min(i + 20, samples.length);
    await waitFor(() => server.stats.received === expected, `${expected} fuzzed datagrams at the responder`);
  }
  await waitFor(
    () => announcer.socket.stats.received === samples.length,
    'the announcer to see the fuzzed datagrams',
  );
  expect(server.closed).toBe(false);
  const client = createRequester(await bound());
  const reply = await client.request('still there?', { port: server.address().port, host: '127.0.0.1' });
  expect(reply.data.toString()).toBe('still there?');
  const found = await discover({
    service: 'fuzzed',
    host: '127.0.0.1',
    discoveryPort: announcer.discoveryPort,
    limit: 1,
  });
  expect(found).toHaveLength(1);
  expect(responder.stats.malformed + responder.stats.handled).toBeGreaterThan(0);
  expect(announcer.stats.invalidTotal).toBeGreaterThan(300);
});

it('never lets a forged reply with a random id resolve someone else’s request', async () => {
  const server = await bound();
  serve(server, async (data) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return data;
  });
  const client = createRequester(await bound());
  const forger = await bound();
  const clientPort = client.socket.address().port;
  const ids = fc.sample(fc.integer({ min: 0, max: 0xffffffff }), { numRuns: 200, seed: 7 });
  const pending = client.request('real', { port: server.address().port, host: '127.0.0.1' });
  for (const id of ids) forger.post(encodeFrame('reply', id, 'forged'), clientPort, '127.0.0.1');
  expect((await pending).data.toString()).toBe('real');
  await waitFor(() => client.stats.unknown >= 190, 'the forged replies to be counted');
});
