import { afterEach, expect, it } from 'vitest';
import { skipTest } from '../../../test-support/peers.js';
import {
  type Announcer,
  announce,
  type BrowseEvent,
  type Browser,
  browse,
  InvalidArgumentError,
} from '../src/index.js';
import { probeBroadcastLoopback, probeMulticastLoopback, waitFor } from './helpers.js';

const closers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c.close()));
});
function track<T extends Announcer | Browser>(thing: T): T {
  closers.push(thing);
  return thing;
}

const multicast = await probeMulticastLoopback();
const broadcast = await probeBroadcastLoopback();
const lanPath = multicast.ok ? 'multicast' : broadcast.ok ? 'broadcast' : undefined;
const PATHS = {
  interfaces: ['127.0.0.1'],
  multicast: multicast.ok,
  broadcast: !multicast.ok && broadcast.ok,
};

it('tracks instances coming up, changing and saying goodbye', async (ctx) => {
  if (lanPath === undefined) {
    console.warn(
      `[udp] neither multicast (${multicast.why}) nor broadcast (${broadcast.why}) on lo: see the unicast browse test`,
    );
    skipTest(ctx, 'no multicast or broadcast on loopback');
  }
  const browser = track(await browse({ ...PATHS, discoveryPort: 0, service: 'net-chat' }));
  const events: string[] = [];
  const iterated: BrowseEvent[] = [];
  const iterator = browser.events();
  const collecting = (async () => {
    for await (const event of iterator) iterated.push(event);
  })();
  browser.on('up', (s) => events.push(`up:${s.port}`));
  browser.on('update', (s) => events.push(`update:${s.meta.ws}`));
  browser.on('down', (s) => events.push(`down:${s.port}`));
  const server = track(
    await announce({
      ...PATHS,
      discoveryPort: browser.discoveryPort,
      service: 'net-chat',
      port: 8080,
      meta: { ws: 'ws://a' },
    }),
  );
  const other = track(
    await announce({ ...PATHS, discoveryPort: browser.discoveryPort, service: 'other-service', port: 9 }),
  );
  await waitFor(() => events.includes('up:8080'), `the announcement via ${lanPath}`);
  await server.update({ ws: 'ws://b' });
  await waitFor(() => events.includes('update:ws://b'), 'the update');
  expect(browser.services.map((s) => s.meta.ws)).toEqual(['ws://b']);
  await server.close();
  await waitFor(() => events.includes('down:8080'), 'the goodbye');
  expect(browser.services).toEqual([]);
  expect(events.some((e) => e.includes(':9'))).toBe(false);
  await browser.close();
  await collecting;
  expect(iterated.map((e) => e.type)).toEqual(['up', 'update', 'down']);
  expect(browser.stats.sendErrors).toBe(0);
  expect(server.stats.sendErrors).toBe(0);
  expect(other.stats.sent).toBeGreaterThan(0);
  console.info(`[udp] browse exercised over ${lanPath}`);
});

it('finds instances through a unicast query and expires them when their ttl runs out', async () => {
  const server = track(
    await announce({
      discoveryPort: 0,
      bindAddress: '127.0.0.1',
      multicast: false,
      broadcast: false,
      service: 'net-chat',
      port: 8124,
      ttl: 1,
      interval: 0,
    }),
  );
  const browser = track(
    await browse({
      discoveryPort: server.discoveryPort,
      bindAddress: '127.0.0.1',
      host: '127.0.0.1',
      service: 'net-chat',
      multicast: false,
      broadcast: false,
    }),
  );
  const down: number[] = [];
  browser.on('down', (s) => down.push(s.port));
  await waitFor(() => browser.services.length === 1, 'the answer to the unicast query');
  expect(browser.services[0]).toMatchObject({ port: 8124, instance: server.instance, ttl: 1 });
  // No re-announcements (interval 0): the entry must expire after about a second.
  await waitFor(() => down.includes(8124), 'the ttl to expire', 5000);
  expect(browser.services).toEqual([]);
});

it('rejects a bad service name', async () => {
  await expect(browse({ service: 'Not OK', discoveryPort: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
});
