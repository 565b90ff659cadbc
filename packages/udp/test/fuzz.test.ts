import fc from 'fast-check';
import { afterEach, expect, it } from 'vitest';
import {
  createRequester,
  createResponder,
  createSocket,
  encodeFrame,
  queryUnicast,
  type MdnsResponder,
  serve,
  type UdpSocket,
} from '../src/index.js';
import { waitFor } from './helpers.js';

const sockets: UdpSocket[] = [];
const announcers: MdnsResponder[] = [];
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
  fc.uint8Array({ maxLength: 200 }).map((rest) => Buffer.concat([Buffer.from([0, 0, 0x84, 0, 0, 1]), rest])),
);

it('keeps a responder and an announcer answering while random datagrams rain on them', async () => {
  const server = await bound();
  const responder = serve(server, (data) => data);
  // A DNS-SD responder answering unicast queries on a private port (no multicast traffic needed).
  const announcer = await createResponder({
    interfaces: ['127.0.0.1'],
    mdnsPort: 0,
    unicastPort: 0,
    host: 'fuzz-host',
  });
  announcers.push(announcer);
  await announcer.advertise({ name: 'fuzzed', type: '_fuzzed._udp', port: 1, probe: false }).ready;
  const unicastPort = announcer.transport.unicastPort!;
  const attacker = await bound();
  const samples = fc.sample(datagram, { numRuns: 400, seed: 42 });
  // Paced in small bursts so the kernel's receive buffer never overflows and every datagram counts.
  for (let i = 0; i < samples.length; i += 20) {
    for (const bytes of samples.slice(i, i + 20)) {
      attacker.post(bytes, server.address().port, '127.0.0.1');
      attacker.post(bytes, unicastPort, '127.0.0.1');
    }
    const expected = Math.min(i + 20, samples.length);
    await waitFor(() => server.stats.received === expected, `${expected} fuzzed datagrams at the responder`);
  }
  await waitFor(
    () => announcer.transport.stats.received >= samples.length,
    'the announcer to see the fuzzed datagrams',
  );
  expect(server.closed).toBe(false);
  const client = createRequester(await bound());
  const reply = await client.request('still there?', { port: server.address().port, host: '127.0.0.1' });
  expect(reply.data.toString()).toBe('still there?');
  const found = await queryUnicast({ type: '_fuzzed._udp', host: '127.0.0.1', port: unicastPort });
  expect(found.map((s) => [s.name, s.port])).toEqual([['fuzzed', 1]]);
  expect(responder.stats.malformed + responder.stats.handled).toBeGreaterThan(0);
  const refused = Object.values(announcer.transport.stats.decode.invalid).reduce((a, b) => a + b, 0);
  expect(refused).toBeGreaterThan(300);
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
