import { isIPv4, isIPv6 } from 'node:net';
import { InvalidOptionError } from './errors.js';
import { normalizeDnsName } from './names.js';
import type { NameConstraintsOptions } from './options.js';
import { x509 } from './x509-setup.js';

/** OID of the X.509 nameConstraints extension (RFC 5280 4.2.1.10). */
export const NAME_CONSTRAINTS_OID = '2.5.29.30';

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, content: readonly number[]): number[] {
  return [tag, ...derLength(content.length), ...content];
}

function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function ipv6Bytes(ip: string): number[] {
  const [head = '', tail = ''] = ip.split('::');
  const expand = (part: string) => (part === '' ? [] : part.split(':'));
  let groups = ip.includes('::') ? [] : expand(ip);
  if (ip.includes('::')) {
    const left = expand(head);
    const right = expand(tail);
    groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  }
  return groups.flatMap((g) => {
    const v = Number.parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

/** `a.b.c.d/n` or `v6::/n` (a bare address means the single address) as address + mask octets. */
function ipRange(cidr: string): number[] {
  const [ip = '', bitsText] = cidr.split('/');
  const v4 = isIPv4(ip);
  if (!v4 && !isIPv6(ip)) throw new InvalidOptionError(`nameConstraints: "${cidr}" is not an IP range`);
  if (!v4 && ip.includes('.'))
    throw new InvalidOptionError(`nameConstraints: write "${cidr}" in plain IPv6 form`);
  const width = v4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) {
    throw new InvalidOptionError(`nameConstraints: bad prefix length in "${cidr}"`);
  }
  const addr = v4 ? ipv4Bytes(ip) : ipv6Bytes(ip);
  const mask = addr.map((_, i) => {
    const left = Math.max(0, Math.min(8, bits - i * 8));
    return (0xff << (8 - left)) & 0xff;
  });
  return [...addr.map((b, i) => b & mask[i]!), ...mask];
}

/**
 * The DER value of a critical nameConstraints extension that permits only the given DNS subtrees
 * and IP ranges: a CA carrying it cannot vouch for any other name, so trusting a leaked dev CA
 * key does not let its holder impersonate arbitrary sites.
 */
export function nameConstraintsExtension(options: NameConstraintsOptions): x509.Extension {
  const dns = (options.dnsNames ?? []).map((n) => normalizeDnsName(n));
  const ips = (options.ipRanges ?? []).map(ipRange);
  if (dns.length === 0 && ips.length === 0) {
    throw new InvalidOptionError('nameConstraints needs at least one DNS name or IP range');
  }
  const subtrees = [
    ...dns.map((n) => tlv(0x30, tlv(0x82, [...Buffer.from(n, 'ascii')]))),
    ...ips.map((octets) => tlv(0x30, tlv(0x87, octets))),
  ].flat();
  const value = tlv(0x30, tlv(0xa0, subtrees));
  return new x509.Extension(NAME_CONSTRAINTS_OID, true, new Uint8Array(value));
}
