import { isIPv6 } from 'node:net';

/**
 * The key an address is counted under: IPv4 as is (an IPv4-mapped IPv6 address is IPv4), IPv6 by
 * its /64 prefix, since one host usually owns a whole /64 and could rotate through it.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** Open connections per client address, at most `max` each (and `total` in all, when given). */
export class AddressCaps {
  private readonly counts = new Map<string, number>();
  private all = 0;

  constructor(
    readonly max: number,
    readonly total = Number.POSITIVE_INFINITY,
  ) {}

  get size(): number {
    return this.all;
  }

  /**
   * Count one more connection from `address`; returns its release function, or the reason it is
   * refused. The release function is idempotent.
   */
  acquire(address: string | undefined): { release: () => void } | { refused: 'address' | 'total' } {
    const key = addressKey(address);
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return { refused: 'address' };
    if (this.all >= this.total) return { refused: 'total' };
    this.counts.set(key, n + 1);
    this.all++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.all--;
        const left = (this.counts.get(key) ?? 1) - 1;
        if (left <= 0) this.counts.delete(key);
        else this.counts.set(key, left);
      },
    };
  }
}
