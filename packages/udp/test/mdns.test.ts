/**
 * The mDNS responder and browser against each other over real sockets: port 5353, the
 * 224.0.0.251 group on the loopback interface only. Every test uses its own service type so
 * parallel test files (and other responders on this machine) do not see each other's answers.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import {
  advertise,
  browse,
  browseTypes,
  createMdns,
  createResponder,
  type DiscoveredService,
  type DnsRecord,
  decodeMessage,
  encodeMessage,
  MdnsTransport,
  Querier,
  queryUnicast,
  RecordCache,
  RR_A,
  RR_PTR,
  RR_SRV,
  RR_TXT,
  resolve,
} from '../src/index.js';
import { waitFor } from './helpers.js';

const interfaces = ['127.0.0.1'];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

const uniqueType = () => `_t${randomBytes(4).toString('hex')}._tcp`;

async function legacySocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/** Sends a legacy (source port ≠ 5353) query to the group and collects the unicast answers. */
async function legacyQuery(socket: dgram.Socket, bytes: Uint8Array, wait = 600): Promise<Buffer[]> {
  const got: Buffer[] = [];
  const onMessage = (m: Buffer) => got.push(m);
  socket.on('message', onMessage);
  socket.setMulticastInterface('127.0.0.1');
  socket.send(bytes, 5353, '224.0.0.251');
  await new Promise((r) => setTimeout(r, wait));
  socket.off('message', onMessage);
  return got;
}

describe('advertise and browse over mDNS on loopback', () => {
  it('sees a service come up with SRV, TXT and addresses, change its TXT, and go down on goodbye', async () => {
    const type = uniqueType();
    const browser = await browse(type, { interfaces });
    cleanups.push(() => browser.close());
    const events: Array<[string, DiscoveredService]> = [];
    for (const e of ['up', 'changed', 'down'] as const) browser.on(e, (s) => events.push([e, s]));
    const ad = await advertise({
      name: 'Chat one',
      type,
      port: 4242,
      txt: { v: 1, path: '/ws' },
      host: 'unit-a',
      interfaces,
    });
    cleanups.push(() => ad.close());
    await waitFor(() => events.length >= 1, 'up', 8000);
    const [kind, up] = events[0]!;
    expect(kind).toBe('up');
    expect(up).toMatchObject({
      name: 'Chat one',
      type,
      host: 'unit-a.local',
      port: 4242,
      addresses: ['127.0.0.1'],
    });
    expect({ ...up.txt }).toEqual({ v: '1', path: '/ws' });
    expect(browser.services).toHaveLength(1);

    await ad.service.updateTxt({ v: 2, path: '/ws' });
    await waitFor(() => events.some(([e]) => e === 'changed'), 'changed', 8000);
    expect(events.find(([e]) => e === 'changed')![1].txt.v).toBe('2');

    await ad.close();
    // Goodbye (TTL 0) keeps the record one more second, then it is gone (RFC 6762 §10.1).
    await waitFor(() => events.some(([e]) => e === 'down'), 'down', 5000);
    expect(browser.services).toHaveLength(0);
  });

  it('resolves an instance by name and enumerates service types', async () => {
    const type = uniqueType();
    const types = await browseTypes({ interfaces });
    cleanups.push(() => types.close());
    const seen: string[] = [];
    types.on('up', (t) => seen.push(t));
    const ad = await advertise({
      name: 'Resolve me',
      type,
      port: 5000,
      txt: { a: 'b' },
      host: 'unit-b',
      interfaces,
    });
    cleanups.push(() => ad.close());
    const found = await resolve(`Resolve me.${type}.local`, { interfaces, timeout: 5000 });
    expect(found).toMatchObject({
      name: 'Resolve me',
      port: 5000,
      addresses: ['127.0.0.1'],
      host: 'unit-b.local',
    });
    await waitFor(() => seen.includes(type), `type ${type} enumerated`, 8000);
  });

  it('keeps a service type enumerated until the last service of that type stops', async () => {
    const type = uniqueType();
    const mdns = await createMdns({ interfaces, host: 'unit-l' });
    cleanups.push(() => mdns.close());
    const one = mdns.publish({ name: 'One', type, port: 1 });
    const two = mdns.publish({ name: 'Two', type, port: 2 });
    await Promise.all([one.ready, two.ready]);
    const sniff = await MdnsTransport.open({ interfaces });
    cleanups.push(() => sniff.close());
    const goodbyes: string[] = [];
    sniff.on('message', (m) => {
      for (const r of m.answers) if (r.ttl === 0 && m.response) goodbyes.push(`${r.name} ${r.data}`);
    });
    await one.stop();
    await waitFor(() => goodbyes.some((g) => g.startsWith(`One.${type}.local`)), 'the goodbye of One', 3000);
    expect(goodbyes).not.toContain(`_services._dns-sd._udp.local ${type}.local`);
    await two.stop();
    await waitFor(
      () => goodbyes.includes(`_services._dns-sd._udp.local ${type}.local`),
      'the type goodbye',
      3000,
    );
  });

  it('two responders with one instance name end with distinct names, both found', async () => {
    const type = uniqueType();
    const mdns = await createMdns({ interfaces, host: 'unit-c' });
    cleanups.push(() => mdns.close());
    const other = await createResponder({ interfaces, host: 'unit-d' });
    cleanups.push(() => other.close());
    const a = mdns.publish({ name: 'Same name', type, port: 1001 });
    const b = other.advertise({ name: 'Same name', type, port: 1002 });
    await Promise.all([a.ready, b.ready]);
    expect(new Set([a.name, b.name])).toEqual(new Set(['Same name', 'Same name (2)']));
    const browser = mdns.browse(type);
    cleanups.push(() => browser.close());
    await waitFor(() => browser.services.length === 2, 'both instances', 8000);
    const byPort = Object.fromEntries(browser.services.map((s) => [s.port, s.name]));
    expect(byPort).toEqual({ 1001: a.name, 1002: b.name });
  });

  it('renames a late-comer whose name is already announced (the owner defends it)', async () => {
    const type = uniqueType();
    const first = await advertise({ name: 'Taken', type, port: 2001, host: 'unit-e', interfaces });
    cleanups.push(() => first.close());
    const second = await advertise({ name: 'Taken', type, port: 2002, host: 'unit-f', interfaces });
    cleanups.push(() => second.close());
    expect(second.service.name).toBe('Taken (2)');
    expect(first.service.name).toBe('Taken');
    expect(second.responder.stats.conflicts).toBeGreaterThan(0);
  });
});

describe('answering rules', () => {
  it('answers a legacy unicast query with its id, its question, TTL ≤ 10 and no cache-flush bits', async () => {
    const type = uniqueType();
    const ad = await advertise({ name: 'Legacy', type, port: 3000, host: 'unit-g', interfaces });
    cleanups.push(() => ad.close());
    const s = await legacySocket();
    const query = encodeMessage({
      id: 4321,
      questions: [{ name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false }],
      // Padding so that the answer with its additionals fits the 4× bound.
      additionals: [
        {
          name: '',
          type: 41,
          class: 1472,
          cacheFlush: false,
          ttl: 0,
          data: new Uint8Array([0, 12, 0, 200, ...new Array(200).fill(0)]),
        },
      ],
    });
    const [reply] = await legacyQuery(s, query);
    const r = decodeMessage(reply!);
    if (!r.ok) throw new Error(r.reason);
    expect(r.message.id).toBe(4321);
    expect(r.message.questions).toEqual([
      { name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false },
    ]);
    const all = [...r.message.answers, ...r.message.additionals];
    expect(all.map((x) => x.type).sort()).toEqual([RR_A, RR_PTR, RR_TXT, RR_SRV].sort());
    for (const x of all) {
      expect(x.ttl).toBeLessThanOrEqual(10);
      expect(x.cacheFlush).toBe(false);
    }
  });

  it('keeps a unicast answer within 4× the query (amplification bound), setting TC when answers do not fit', async () => {
    const type = uniqueType();
    const ad = await advertise({
      name: 'Big',
      type,
      port: 3001,
      host: 'unit-h',
      txt: { blob: 'x'.repeat(250) },
      interfaces,
    });
    cleanups.push(() => ad.close());
    const s = await legacySocket();
    const small = encodeMessage({
      id: 1,
      questions: [{ name: `Big.${type}.local`, type: 255, class: 1, unicastResponse: false }],
    });
    const replies = await legacyQuery(s, small);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.length).toBeLessThanOrEqual(4 * small.length);
    const r = decodeMessage(replies[0]!);
    expect(r.ok && r.message.truncated).toBe(true);
    expect(ad.responder.stats.truncated).toBeGreaterThan(0);
  });

  it('suppresses answers the querier already knows (known-answer suppression)', async () => {
    const type = uniqueType();
    const ad = await advertise({ name: 'Known', type, port: 3002, host: 'unit-i', interfaces });
    cleanups.push(() => ad.close());
    const s = await legacySocket();
    const question = { name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false };
    const known = {
      name: `${type}.local`,
      type: RR_PTR,
      class: 1,
      cacheFlush: false,
      ttl: 4000,
      data: `Known.${type}.local`,
    } as DnsRecord;
    expect(
      await legacyQuery(s, encodeMessage({ id: 2, questions: [question], answers: [known] })),
    ).toHaveLength(0);
    // A known answer with less than half its TTL left does not count.
    expect(
      await legacyQuery(
        s,
        encodeMessage({ id: 3, questions: [question], answers: [{ ...known, ttl: 100 } as DnsRecord] }),
      ),
    ).toHaveLength(1);
    expect(ad.responder.stats.suppressed).toBeGreaterThan(0);
  });

  it('rate-limits unicast answers (token bucket) and multicast answers (one per record per second)', async () => {
    const type = uniqueType();
    const ad = await advertise({
      name: 'Busy',
      type,
      port: 3003,
      host: 'unit-j',
      interfaces,
      unicastAnswersPerSecond: 5,
    });
    cleanups.push(() => ad.close());
    const s = await legacySocket();
    const q = encodeMessage({
      id: 9,
      questions: [{ name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false }],
    });
    const got: Buffer[] = [];
    s.on('message', (m) => got.push(m));
    s.setMulticastInterface('127.0.0.1');
    for (let i = 0; i < 60; i++) s.send(q, 5353, '224.0.0.251');
    await new Promise((r) => setTimeout(r, 800));
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThanOrEqual(15); // burst 10 + 5/s
    const before = ad.responder.stats.multicastAnswers;
    // QM queries from port 5353 go to the group; two within a second get one answer.
    const t = await MdnsTransport.open({ interfaces });
    cleanups.push(() => t.close());
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 3; i++) {
      await t.multicast({
        questions: [{ name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false }],
      });
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 250));
    expect(ad.responder.stats.multicastAnswers - before).toBe(1);
    // The later questions were not dropped: their answer waits until a second has passed.
    await waitFor(() => ad.responder.stats.multicastAnswers - before === 2, 'the deferred answer', 2000);
    await new Promise((r) => setTimeout(r, 300));
    expect(ad.responder.stats.multicastAnswers - before).toBe(2);
  });

  it('answers DNS-SD queries on a plain unicast port (networks without multicast)', async () => {
    const type = uniqueType();
    const ad = await advertise({
      name: 'Unicast',
      type,
      port: 3004,
      host: 'unit-k',
      txt: { v: 1 },
      interfaces,
      unicastPort: 0,
    });
    cleanups.push(() => ad.close());
    const port = ad.responder.transport.unicastPort!;
    const found = await queryUnicast({ host: '127.0.0.1', port, type, timeout: 3000 });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ name: 'Unicast', port: 3004, addresses: ['127.0.0.1'] });
    expect(found[0]!.txt.v).toBe('1');
  });
});

describe('querier', () => {
  it('treats its query as sent when another host asks the same question (duplicate-question suppression)', async () => {
    const type = uniqueType();
    const transport = await MdnsTransport.open({ interfaces });
    const querier = new Querier(transport, {}, true);
    cleanups.push(() => querier.close());
    const release = querier.want(`${type}.local`, RR_PTR);
    cleanups.push(async () => release());
    const other = await MdnsTransport.open({ interfaces });
    cleanups.push(() => other.close());
    const asked: number[] = [];
    other.on('message', (m) => {
      if (!m.response && m.questions.some((q) => q.name === `${type}.local`)) asked.push(Date.now());
    });
    await waitFor(() => asked.length === 1, 'the first query', 3000);
    await new Promise((r) => setTimeout(r, 400));
    await other.multicast({
      questions: [{ name: `${type}.local`, type: RR_PTR, class: 1, unicastResponse: false }],
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(querier.duplicateQuestionsSuppressed).toBe(1);
    // Ours (1) and the other host's (1): the second of ours, due 1 s after the first, was skipped.
    expect(asked).toHaveLength(2);
  });
});

describe('record cache', () => {
  const ptr = (data: string, ttl = 100, cacheFlush = false) =>
    ({ name: '_x._tcp.local', type: RR_PTR, class: 1, cacheFlush, ttl, data }) as DnsRecord;

  it('expires records, keeps goodbyes one second, and honours cache-flush', () => {
    const c = new RecordCache();
    c.add(ptr('a'), 0);
    c.add(ptr('b'), 0);
    expect(c.get('_x._tcp.local', RR_PTR, 99_000)).toHaveLength(2);
    expect(c.sweep(100_000)).toEqual(new Set(['_x._tcp.local']));
    expect(c.size).toBe(0);
    c.add(ptr('a'), 0);
    c.add(ptr('a', 0), 5000);
    expect(c.get('_x._tcp.local', RR_PTR, 5999)).toHaveLength(1);
    expect(c.get('_x._tcp.local', RR_PTR, 6000)).toHaveLength(0);
    c.sweep(6000);
    c.add(ptr('old'), 0);
    c.add(ptr('new', 100, true), 2000);
    expect(
      c
        .get('_x._tcp.local', RR_PTR, 2999)
        .map((r) => r.data)
        .sort(),
    ).toEqual(['new', 'old']);
    expect(c.get('_x._tcp.local', RR_PTR, 3000).map((r) => r.data)).toEqual(['new']);
  });

  it('is bounded and re-queries at 80–95 % of the TTL', () => {
    const c = new RecordCache(10);
    for (let i = 0; i < 50; i++) c.add(ptr(`i${i}`, 100 + i), 0);
    expect(c.size).toBe(10);
    expect(c.evicted).toBe(40);
    const d = new RecordCache();
    d.add(ptr('a', 100), 0);
    const points: number[] = [];
    for (let t = 0; t <= 100_000; t += 100) if (d.due(t).length > 0) points.push(t / 1000);
    expect(points).toHaveLength(4);
    points.forEach((p, i) => {
      expect(p).toBeGreaterThanOrEqual(80 + 5 * i);
      expect(p).toBeLessThanOrEqual(82.1 + 5 * i);
    });
  });
});
