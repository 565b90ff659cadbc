import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DnsMessage,
  type DnsRecord,
  DnsEncodeError,
  decodeMessage,
  decodeTxt,
  encodeMessage,
  encodeTxt,
  labelsToName,
  nameToLabels,
  newDecodeStats,
  RR_A,
  RR_AAAA,
  RR_NSEC,
  RR_PTR,
  RR_SRV,
  RR_TXT,
} from '../src/index.js';
import { parseIPv6 } from '../src/dns-message.js';

const RUNS = { numRuns: 150 };

// Labels of any Unicode text (dots and backslashes included: DNS-SD instance names may have them).
const label = fc.string({ minLength: 1, maxLength: 15, unit: 'binary' }).filter((l) => {
  const n = Buffer.byteLength(l);
  return n >= 1 && n <= 63 && !/[\ud800-\udfff]/.test(l);
});
const freshName = fc.array(label, { minLength: 1, maxLength: 4 }).map(labelsToName);
// A few shared suffixes so compression has something to do.
const name = fc.oneof(
  freshName,
  fc
    .tuple(label, fc.constantFrom('_net-chat._tcp.local', 'local', 'host.local'))
    .map(([l, s]) => `${labelsToName([l])}.${s}`),
  fc.constantFrom('_net-chat._tcp.local', '_services._dns-sd._udp.local', 'host.local'),
);
const base = {
  name,
  class: fc.constantFrom(1, 255, 3),
  cacheFlush: fc.boolean(),
  ttl: fc.integer({ min: 0, max: 0xffffffff }),
};
const record: fc.Arbitrary<DnsRecord> = fc.oneof(
  fc.record({ ...base, type: fc.constant(RR_A), data: fc.ipV4() }),
  fc.record({
    ...base,
    type: fc.constant(RR_AAAA),
    data: fc.ipV6().map((a) => {
      // Decoding writes the canonical (RFC 5952) form; generate that form.
      const r = decodeMessage(
        encodeMessage({
          answers: [{ name: 'x', type: RR_AAAA, class: 1, cacheFlush: false, ttl: 1, data: a }],
        }),
      );
      return r.ok ? (r.message.answers[0]!.data as string) : '::';
    }),
  }),
  fc.record({ ...base, type: fc.constant(RR_PTR), data: name }),
  fc.record({
    ...base,
    type: fc.constant(RR_SRV),
    data: fc.record({
      priority: fc.integer({ min: 0, max: 65535 }),
      weight: fc.integer({ min: 0, max: 65535 }),
      port: fc.integer({ min: 0, max: 65535 }),
      target: name,
    }),
  }),
  fc.record({
    ...base,
    type: fc.constant(RR_TXT),
    data: fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    ...base,
    type: fc.constant(RR_NSEC),
    data: fc.record({
      next: name,
      types: fc
        .uniqueArray(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 6 })
        .map((t) => t.sort((a, b) => a - b)),
    }),
  }),
  fc.record({ ...base, type: fc.constantFrom(10, 99, 257), data: fc.uint8Array({ maxLength: 30 }) }),
) as fc.Arbitrary<DnsRecord>;

const message: fc.Arbitrary<DnsMessage> = fc.record({
  id: fc.integer({ min: 0, max: 65535 }),
  response: fc.boolean(),
  opcode: fc.integer({ min: 0, max: 15 }),
  authoritative: fc.boolean(),
  truncated: fc.boolean(),
  recursionDesired: fc.boolean(),
  recursionAvailable: fc.boolean(),
  rcode: fc.integer({ min: 0, max: 15 }),
  questions: fc.array(
    fc.record({
      name,
      type: fc.constantFrom(1, 12, 16, 33, 255),
      unicastResponse: fc.boolean(),
      class: fc.constantFrom(1, 255),
    }),
    { maxLength: 3 },
  ),
  answers: fc.array(record, { maxLength: 4 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 3 }),
});

describe('DNS message codec', () => {
  it('round-trips every message, compressed or not', () => {
    fc.assert(
      fc.property(message, fc.boolean(), (m, compress) => {
        const bytes = encodeMessage(m, { compress });
        const decoded = decodeMessage(bytes);
        expect(decoded).toEqual({ ok: true, message: m });
      }),
      RUNS,
    );
  });

  it('keeps a leading U+FEFF in a name (a decoder must not eat it as a BOM)', () => {
    // Found by the round-trip property: TextDecoder strips a leading BOM unless told not to.
    const m = {
      id: 0,
      response: false,
      opcode: 0,
      authoritative: false,
      truncated: false,
      recursionDesired: false,
      recursionAvailable: false,
      rcode: 0,
      questions: [],
      answers: [{ name: '\uFEFF', class: 1, cacheFlush: false, ttl: 0, type: 1, data: '0.0.0.0' }],
      authorities: [],
      additionals: [],
    } as Parameters<typeof encodeMessage>[0];
    for (const compress of [false, true]) {
      expect(decodeMessage(encodeMessage(m, { compress }))).toEqual({ ok: true, message: m });
    }
  });

  it('compression never grows a message and turns a repeated name into a 2-byte pointer', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(encodeMessage(m).length).toBeLessThanOrEqual(encodeMessage(m, { compress: false }).length);
      }),
      RUNS,
    );
    const ptr = (data: string): DnsRecord => ({
      name: '_net-chat._tcp.local',
      type: RR_PTR,
      class: 1,
      cacheFlush: false,
      ttl: 1,
      data,
    });
    const one = encodeMessage({ answers: [ptr('a._net-chat._tcp.local')] });
    const two = encodeMessage({ answers: [ptr('a._net-chat._tcp.local'), ptr('b._net-chat._tcp.local')] });
    // Second record: owner name is a pointer (2), fixed fields (10), rdata "b" label (2) + pointer (2).
    expect(two.length - one.length).toBe(16);
  });

  it('writes the RFC 1035 layout (a QU question for _http._tcp.local)', () => {
    const bytes = encodeMessage({
      questions: [{ name: '_http._tcp.local', type: RR_PTR, class: 1, unicastResponse: true }],
    });
    expect(Buffer.from(bytes).toString('hex')).toBe(
      '000000000001000000000000055f68747470045f746370056c6f63616c00000c8001',
    );
  });

  it('decodes every truncation of a valid message to an error, and every bit flip without throwing', () => {
    const stats = newDecodeStats();
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encodeMessage(m);
        for (let cut = 0; cut < bytes.length; cut++) {
          const r = decodeMessage(bytes.subarray(0, cut), stats);
          expect(r.ok).toBe(false);
          if (!r.ok) expect(typeof r.reason).toBe('string');
        }
        for (let bit = 0; bit < bytes.length * 8; bit++) {
          const flipped = bytes.slice();
          flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
          const r = decodeMessage(flipped, stats);
          expect(typeof r.ok).toBe('boolean');
        }
      }),
      { numRuns: 30 },
    );
    const refused = Object.values(stats.invalid).reduce((a, b) => a + b, 0);
    expect(refused).toBeGreaterThan(0);
    expect(stats.decoded + refused).toBeGreaterThan(1000);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const r = decodeMessage(bytes);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses pointer loops, forward and out-of-range pointers, reserved label types and long names', () => {
    const header = [0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    const q = (nameBytes: number[]) => new Uint8Array([...header, ...nameBytes, 0, 1, 0, 1]);
    const stats = newDecodeStats();
    expect(decodeMessage(q([0xc0, 12]), stats)).toMatchObject({ ok: false, reason: 'pointer-loop' });
    expect(decodeMessage(q([0xc0, 14]), stats)).toMatchObject({ ok: false, reason: 'pointer-loop' });
    expect(decodeMessage(q([0xc0, 200]), stats)).toMatchObject({ ok: false, reason: 'pointer-out-of-range' });
    expect(decodeMessage(q([0x3f | 0x40, 1]), stats)).toMatchObject({ ok: false, reason: 'bad-label-type' });
    expect(decodeMessage(q([1, 0xff]), stats)).toMatchObject({ ok: false, reason: 'bad-utf8' });
    // Two labels pointing at each other: the first backward pointer is fine, the second loops.
    expect(decodeMessage(new Uint8Array([...header, 1, 97, 0xc0, 14, 0, 1, 0, 1]), stats)).toMatchObject({
      ok: false,
      reason: 'pointer-loop',
    });
    const long: number[] = [];
    for (let i = 0; i < 5; i++) long.push(63, ...new Array<number>(63).fill(97));
    expect(decodeMessage(q(long), stats)).toMatchObject({ ok: false, reason: 'name-too-long' });
    expect(decodeMessage(new Uint8Array(5), stats)).toMatchObject({ ok: false, reason: 'too-short' });
    expect(decodeMessage(new Uint8Array([...q([0]), 7]), stats)).toMatchObject({
      ok: false,
      reason: 'trailing-bytes',
    });
    expect(stats.invalid['pointer-loop']).toBe(3);
    expect(Object.values(stats.invalid).reduce((a, b) => a + b, 0)).toBe(9);
  });

  it('carries the mDNS QU and cache-flush bits', () => {
    const bytes = encodeMessage({
      questions: [{ name: 'a.local', type: 255, class: 1, unicastResponse: true }],
      answers: [{ name: 'a.local', type: RR_A, class: 1, cacheFlush: true, ttl: 120, data: '127.0.0.1' }],
    });
    const r = decodeMessage(bytes);
    expect(r.ok && r.message.questions[0]!.unicastResponse).toBe(true);
    expect(r.ok && r.message.answers[0]!.cacheFlush).toBe(true);
  });

  it('refuses to encode what it cannot represent', () => {
    const bad = (n: string) => () =>
      encodeMessage({ questions: [{ name: n, type: 1, class: 1, unicastResponse: false }] });
    expect(bad(`${'a'.repeat(64)}.local`)).toThrow(DnsEncodeError);
    expect(bad(Array(10).fill('a'.repeat(30)).join('.'))).toThrow(/255/);
    expect(() => parseIPv6('1::2::3')).toThrow(DnsEncodeError);
    expect(() =>
      encodeMessage({
        answers: [{ name: 'x', type: RR_A, class: 1, cacheFlush: false, ttl: 1, data: '300.1.1.1' }],
      }),
    ).toThrow(/IPv4/);
  });

  it('escapes dots and backslashes inside labels', () => {
    expect(nameToLabels('My\\.Chat\\\\1._x._tcp.local')).toEqual(['My.Chat\\1', '_x', '_tcp', 'local']);
    expect(labelsToName(['a.b', 'c'])).toBe('a\\.b.c');
  });
});

describe('TXT records (RFC 6763 §6)', () => {
  it('round-trips pairs, booleans and empty values; keys compare case-insensitively, first wins', () => {
    const strings = encodeTxt({ v: 1, path: '/ws', tls: true, empty: '', off: false, gone: null });
    expect(strings.map((s) => Buffer.from(s).toString())).toEqual(['v=1', 'path=/ws', 'tls', 'empty=']);
    const txt = decodeTxt([...strings, Buffer.from('PATH=/other'), Buffer.from('=nokey'), new Uint8Array(0)]);
    expect({ ...txt }).toEqual({ v: '1', path: '/ws', tls: true, empty: '' });
    expect(Object.getPrototypeOf(decodeTxt([Buffer.from('__proto__=x')]))).toBe(null);
  });

  it('refuses bad keys, duplicates and oversize entries', () => {
    expect(() => encodeTxt({ 'a=b': 'x' })).toThrow(DnsEncodeError);
    expect(() => encodeTxt({ '': 'x' })).toThrow(/empty/);
    expect(() => encodeTxt({ k: 'x'.repeat(254) })).toThrow(/255/);
    expect(() => encodeTxt({ a: '1', A: '2' })).toThrow(/duplicate/);
    expect(() =>
      encodeTxt(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(200)]))),
    ).toThrow(/1300/);
  });

  it('decodes arbitrary TXT strings without throwing', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 30 }), { maxLength: 8 }), (strings) => {
        expect(typeof decodeTxt(strings)).toBe('object');
      }),
      { numRuns: 500 },
    );
  });
});
