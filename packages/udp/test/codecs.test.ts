import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, itFuzz } from '../../../test-support/fuzz.js';
import {
  type DiscoveryMessage,
  decodeDiscoveryMessage,
  decodeFrame,
  encodeDiscoveryMessage,
  encodeFrame,
  type FrameKind,
  MAX_DISCOVERY_MESSAGE,
  REQUEST_HEADER_SIZE,
} from '../src/index.js';

const RUNS = { numRuns: 300 };

/** A datagram is delivered whole, but it may sit at any offset inside a larger backing buffer. */
function embedded(bytes: Uint8Array, before: number, after: number): Uint8Array {
  const backing = new Uint8Array(before + bytes.length + after).fill(0xaa);
  backing.set(bytes, before);
  return backing.subarray(before, before + bytes.length);
}

describe('request header codec', () => {
  const kind = fc.constantFrom<FrameKind>('request', 'reply', 'error');
  const id = fc.integer({ min: 0, max: 0xffffffff });

  itFuzz('round-trips kind, id and payload at any buffer offset', async () => {
    await fuzz(
      'udp-codecs-1',
      fc.property(
        kind,
        id,
        fc.uint8Array({ maxLength: 2048 }),
        fc.nat(64),
        fc.nat(64),
        (k, i, payload, a, b) => {
          const frame = decodeFrame(embedded(encodeFrame(k, i, payload), a, b));
          expect(frame.kind).toBe(k);
          if (frame.kind === 'invalid') return;
          expect(frame.id).toBe(i);
          expect(Buffer.compare(frame.payload, Buffer.from(payload))).toBe(0);
        },
      ),
      RUNS,
    );
  });

  itFuzz('never throws on arbitrary bytes and accepts only well-formed headers', async () => {
    await fuzz(
      'udp-codecs-2',
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const frame = decodeFrame(bytes);
        const wellFormed = bytes.length >= 8 && bytes[0] === 0xae && bytes[1] === 0x55 && bytes[2] === 1;
        expect(frame.kind !== 'invalid').toBe(wellFormed);
      }),
      { numRuns: 1000 },
    );
  });

  it('ignores reserved flag bits and reports why a frame is invalid', () => {
    const frame = encodeFrame('reply', 7, 'x');
    frame[3] = frame[3]! | 0xf0;
    expect(decodeFrame(frame)).toMatchObject({ kind: 'reply', id: 7 });
    expect(decodeFrame(new Uint8Array(3))).toEqual({ kind: 'invalid', reason: 'too-short' });
    expect(decodeFrame(Buffer.from('GET / HTTP/1.1'))).toEqual({ kind: 'invalid', reason: 'bad-magic' });
    const future = encodeFrame('request', 1);
    future[2] = 2;
    expect(decodeFrame(future)).toEqual({ kind: 'invalid', reason: 'unsupported-version' });
    expect(encodeFrame('request', 0xffffffff).length).toBe(REQUEST_HEADER_SIZE);
    expect(() => encodeFrame('request', -1)).toThrow(RangeError);
  });

  itFuzz('decodes a header split across an arbitrary prefix of a larger datagram', async () => {
    await fuzz(
      'udp-codecs-3',
      fc.property(id, fc.uint8Array({ maxLength: 100 }), fc.nat(108), (i, payload, cut) => {
        const bytes = encodeFrame('request', i, payload);
        const prefix = bytes.subarray(0, Math.min(cut, bytes.length));
        const frame = decodeFrame(prefix);
        if (prefix.length < REQUEST_HEADER_SIZE)
          expect(frame).toEqual({ kind: 'invalid', reason: 'too-short' });
        else expect(frame).toMatchObject({ kind: 'request', id: i });
      }),
      RUNS,
    );
  });
});

const serviceName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,62}$/);
const metaKey = fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/);
const meta = fc.dictionary(metaKey, fc.string({ maxLength: 40, unit: 'grapheme' }), { maxKeys: 6 });
const instance = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex'));
const announcement: fc.Arbitrary<DiscoveryMessage> = fc.record({
  type: fc.constantFrom<'announce' | 'bye'>('announce', 'bye'),
  service: serviceName,
  instance,
  port: fc.integer({ min: 1, max: 65535 }),
  ttl: fc.integer({ min: 0, max: 65535 }),
  queryId: fc.integer({ min: 0, max: 0xffffffff }),
  meta,
});
const query: fc.Arbitrary<DiscoveryMessage> = fc.record({
  type: fc.constant<'query'>('query'),
  service: fc.option(serviceName, { nil: null }),
  queryId: fc.integer({ min: 0, max: 0xffffffff }),
  padding: fc.nat(300),
});

describe('discovery message codec', () => {
  itFuzz('round-trips queries and announcements at any buffer offset', async () => {
    await fuzz(
      'udp-codecs-4',
      fc.property(fc.oneof(announcement, query), fc.nat(32), fc.nat(32), (message, a, b) => {
        const decoded = decodeDiscoveryMessage(embedded(encodeDiscoveryMessage(message), a, b));
        if (decoded.type === 'announce' || decoded.type === 'bye') {
          expect({ ...decoded, meta: { ...decoded.meta } }).toEqual(message);
        } else expect(decoded).toEqual(message);
      }),
      RUNS,
    );
  });

  itFuzz('never throws on arbitrary bytes, with or without a valid magic and version', async () => {
    const prefixed = fc
      .tuple(fc.constantFrom(1, 2, 3, 9), fc.uint8Array({ maxLength: 200 }))
      .map(([type, rest]) => Buffer.concat([Buffer.from([0x4e, 0x45, 0x54, 0x44, 1, type]), rest]));
    await fuzz(
      'udp-codecs-5',
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), prefixed), (bytes) => {
        const decoded = decodeDiscoveryMessage(bytes);
        expect(['query', 'announce', 'bye', 'invalid']).toContain(decoded.type);
      }),
      { numRuns: 2000 },
    );
  });

  itFuzz('rejects every truncation and any mutation it cannot vouch for, without throwing', async () => {
    await fuzz(
      'udp-codecs-6',
      fc.property(announcement, fc.nat(2000), fc.integer({ min: 0, max: 255 }), (message, where, value) => {
        const bytes = encodeDiscoveryMessage(message);
        for (let cut = 0; cut < bytes.length; cut++) {
          expect(decodeDiscoveryMessage(bytes.subarray(0, cut)).type).toBe('invalid');
        }
        const mutated = Buffer.from(bytes);
        mutated[where % mutated.length] = value;
        const decoded = decodeDiscoveryMessage(mutated);
        if (decoded.type !== 'invalid') expect(encodeDiscoveryMessage(decoded).length).toBe(mutated.length);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses oversized datagrams and oversized meta', () => {
    expect(decodeDiscoveryMessage(new Uint8Array(MAX_DISCOVERY_MESSAGE + 1))).toEqual({
      type: 'invalid',
      reason: 'too-large',
    });
    const big = {
      type: 'announce',
      service: 'x',
      instance: '0'.repeat(16),
      port: 1,
      ttl: 1,
      queryId: 0,
    } as const;
    expect(() => encodeDiscoveryMessage({ ...big, meta: { k: 'v'.repeat(1500) } })).toThrow(RangeError);
    const small = encodeDiscoveryMessage({ ...big, meta: { k: 'v'.repeat(100) } });
    expect(decodeDiscoveryMessage(small, 100)).toEqual({ type: 'invalid', reason: 'too-large' });
  });

  it('validates service names, meta keys, UTF-8 and ports', () => {
    const base = {
      type: 'announce',
      service: 'net-chat',
      instance: 'ab'.repeat(8),
      port: 8080,
      ttl: 60,
      queryId: 0,
    } as const;
    expect(() => encodeDiscoveryMessage({ ...base, service: 'Net Chat', meta: {} })).toThrow(TypeError);
    expect(() => encodeDiscoveryMessage({ ...base, meta: { 'bad key': 'x' } })).toThrow(TypeError);
    expect(() => encodeDiscoveryMessage({ ...base, port: 0, meta: {} })).toThrow(RangeError);
    const ok = encodeDiscoveryMessage({ ...base, meta: { ws: 'ws://host:8080/ws', caFingerprint: 'AB:CD' } });
    const decoded = decodeDiscoveryMessage(ok);
    expect(decoded).toMatchObject({ type: 'announce', service: 'net-chat', port: 8080 });
    // Corrupt the last value byte into an invalid UTF-8 lead byte.
    const badUtf8 = Buffer.from(ok);
    badUtf8[badUtf8.length - 1] = 0xff;
    expect(decodeDiscoveryMessage(badUtf8)).toEqual({ type: 'invalid', reason: 'bad-utf8' });
    const future = Buffer.from(ok);
    future[4] = 2;
    expect(decodeDiscoveryMessage(future)).toEqual({ type: 'invalid', reason: 'unsupported-version' });
    expect(decodeDiscoveryMessage(Buffer.concat([ok, Buffer.from([0])]))).toEqual({
      type: 'invalid',
      reason: 'trailing-bytes',
    });
  });

  it('treats a __proto__ meta key as plain data', () => {
    const bytes = encodeDiscoveryMessage({
      type: 'announce',
      service: 's',
      instance: '00'.repeat(8),
      port: 1,
      ttl: 1,
      queryId: 0,
      meta: JSON.parse('{"__proto__":"polluted"}') as Record<string, string>,
    });
    const decoded = decodeDiscoveryMessage(bytes);
    expect(decoded.type).toBe('announce');
    if (decoded.type === 'announce') expect(Object.keys(decoded.meta)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
