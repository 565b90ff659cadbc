import fc from 'fast-check';
import { afterEach, expect } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import {
  createRequester,
  createResponder,
  createSocket,
  decodeFrame,
  encodeFrame,
  type MdnsResponder,
  queryUnicast,
  serve,
  type UdpSocket,
} from '../src/index.js';
import { looksLikeFrame } from '../src/request-header.js';
import { waitFor } from './helpers.js';

const sockets: UdpSocket[] = [];
const announcers: MdnsResponder[] = [];
async function closeAll(): Promise<void> {
  await Promise.all([
    ...sockets.splice(0).map((s) => s.close()),
    ...announcers.splice(0).map((a) => a.close()),
  ]);
}
afterEach(closeAll);

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

// Socket-level fuzzing: each run is a whole scenario over real loopback sockets, so the budget is
// a handful of runs, each with a fresh seed (printed and saved by test-support/fuzz on failure).
itFuzz('keeps a responder and an announcer answering while random datagrams rain on them', () =>
  fuzz(
    'udp-socket-rain',
    fc.asyncProperty(fc.array(datagram, { minLength: 300, maxLength: 400 }), async (samples) => {
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
      // Paced in small bursts so the kernel's receive buffer never overflows and every datagram counts.
      for (let i = 0; i < samples.length; i += 20) {
        for (const bytes of samples.slice(i, i + 20)) {
          attacker.post(bytes, server.address().port, '127.0.0.1');
          attacker.post(bytes, unicastPort, '127.0.0.1');
        }
        const expected = Math.min(i + 20, samples.length);
        await waitFor(
          () => server.stats.received === expected,
          `${expected} fuzzed datagrams at the responder`,
        );
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
      expect(found.map((f) => [f.name, f.port])).toEqual([['fuzzed', 1]]);
      // Every datagram that looks like a request frame was either handled or counted as malformed
      // (others are not ours and are ignored), and the announcer saw them all (only a few random
      // ones can be valid DNS queries).
      const framed = samples.filter((b) => {
        if (!looksLikeFrame(b)) return false;
        const kind = decodeFrame(b).kind;
        return kind === 'invalid' || kind === 'request';
      }).length;
      expect(framed).toBeGreaterThan(0);
      const { malformed, handled, inProgress, cached, overloaded } = responder.stats;
      expect(malformed + handled + inProgress + cached + overloaded).toBe(framed + 1); // + "still there?"

      const refused = Object.values(announcer.transport.stats.decode.invalid).reduce((x, y) => x + y, 0);
      expect(refused).toBeGreaterThan(samples.length * 0.75);
      await closeAll();
    }),
    { numRuns: 2, parameters: { endOnFailure: true } },
  ),
);

itFuzz('never lets a forged reply with a random id resolve someone else’s request', () =>
  fuzz(
    'udp-forged-replies',
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 200, maxLength: 200 }),
      async (ids) => {
        const server = await bound();
        serve(server, async (data) => {
          await new Promise((resolve) => setTimeout(resolve, 30));
          return data;
        });
        const client = createRequester(await bound());
        const forger = await bound();
        const clientPort = client.socket.address().port;
        const pending = client.request('real', { port: server.address().port, host: '127.0.0.1' });
        for (const id of ids) forger.post(encodeFrame('reply', id, 'forged'), clientPort, '127.0.0.1');
        expect((await pending).data.toString()).toBe('real');
        // At most one random id can collide with the pending request's; the rest are counted.
        await waitFor(() => client.stats.unknown >= ids.length - 1, 'the forged replies to be counted');
        await closeAll();
      },
    ),
    { numRuns: 3, parameters: { endOnFailure: true } },
  ),
);
