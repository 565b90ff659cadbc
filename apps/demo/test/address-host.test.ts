import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruMap, TokenBucket } from '../src/chat/limits.js';
import { AddressCaps, addressKey } from '../src/transports/address-caps.js';
import { allowedHostNames, hostCheck, hostOf } from '../src/transports/host-check.js';

describe('addressKey', () => {
  it('counts IPv4-mapped IPv6 as IPv4 and IPv6 per /64', () => {
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });

  it('property: two IPv6 addresses with the same first 64 bits share a key', () => {
    const hextet = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    fc.assert(
      fc.property(
        fc.array(hextet, { minLength: 4, maxLength: 4 }),
        fc.array(hextet, { minLength: 4, maxLength: 4 }),
        fc.array(hextet, { minLength: 4, maxLength: 4 }),
        (prefix, a, b) => {
          const ka = addressKey([...prefix, ...a].join(':'));
          expect(ka).toBe(addressKey([...prefix, ...b].join(':')));
          expect(ka).toMatch(/::\/64$/);
        },
      ),
    );
  });

  it('property: a key is stable for any address fast-check generates', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        expect(addressKey(ip)).toMatch(/^[0-9a-f:]+::\/64$/);
      }),
    );
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        expect(addressKey(ip)).toBe(ip);
      }),
    );
  });
});

describe('AddressCaps', () => {
  it('refuses past the per-address and the total cap; release is idempotent', () => {
    const caps = new AddressCaps(2, 3);
    const a1 = caps.acquire('10.0.0.1');
    const a2 = caps.acquire('10.0.0.1');
    expect(caps.acquire('10.0.0.1')).toEqual({ refused: 'address' });
    const b1 = caps.acquire('10.0.0.2');
    expect(caps.acquire('10.0.0.3')).toEqual({ refused: 'total' });
    if (!('release' in a1) || !('release' in a2) || !('release' in b1)) throw new Error('refused');
    a1.release();
    a1.release();
    expect(caps.size).toBe(2);
    expect('release' in caps.acquire('10.0.0.1')).toBe(true);
  });
});

describe('Host allowlist', () => {
  const allowed = hostCheck(allowedHostNames('127.0.0.1', ['chat.example']));

  it('takes the name out of a Host header', () => {
    expect(hostOf('LocalHost:8080')).toBe('localhost');
    expect(hostOf('[::1]:8080')).toBe('::1');
    expect(hostOf('example.com.')).toBe('example.com');
  });

  it('accepts local and configured names, refuses others', () => {
    for (const h of ['localhost:1', '127.0.0.1:8080', '[::1]:1', 'chat.example', 'x.localhost:5', undefined])
      expect(allowed(h), String(h)).toBe(true);
    for (const h of ['rebind.attacker.example:8080', 'chat.example.attacker.example', '10.0.0.1', ''])
      expect(allowed(h), h).toBe(false);
  });

  it('property: hostOf(name:port) is the lower-cased name', () => {
    fc.assert(
      fc.property(fc.domain(), fc.integer({ min: 1, max: 65535 }), (name, port) => {
        expect(hostOf(`${name}:${port}`)).toBe(name.toLowerCase());
        expect(hostOf(name)).toBe(name.toLowerCase());
      }),
    );
  });
});

describe('limits', () => {
  it('TokenBucket: burst at once, then one per interval', () => {
    let now = 0;
    const b = new TokenBucket(3, 1000, () => now);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    expect(b.retryAfterMs()).toBe(1000);
    now += 1000;
    expect([b.take(), b.take()]).toEqual([true, false]);
  });

  it('LruMap drops the least recently used entry, never everything', () => {
    const evicted: string[] = [];
    const m = new LruMap<string, number>(2, (k) => evicted.push(k));
    m.set('a', 1);
    m.set('b', 2);
    m.get('a');
    m.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(m.get('a')).toBe(1);
    expect(m.size).toBe(2);
  });
});
