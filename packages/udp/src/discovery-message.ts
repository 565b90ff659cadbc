/**
 * The discovery wire format (sans-I/O). Version 1, all integers big-endian:
 *
 * ```
 * offset  size  field
 *   0      4    magic        "NETD" (4E 45 54 44)
 *   4      1    version      1
 *   5      1    type         1 QUERY, 2 ANNOUNCE, 3 BYE
 *   6      1    flags        reserved: senders write 0, receivers ignore
 *   7      1    S            service name length, 0..63 (0 only in QUERY: "any service")
 *   8      S    service      a-z 0-9 . _ -   (starts with a letter or digit)
 * QUERY
 *   8+S    4    queryId      random nonce, echoed by answers
 *   12+S   …    padding      zero bytes (optional): an announcer answers a query only if its
 *                            answer is at most 4× the query's size, so spoofed queries cannot
 *                            amplify traffic; clients pad queries to make room for big answers
 * ANNOUNCE and BYE
 *   8+S    8    instance     random id of the announcing process (stable while it runs)
 *   16+S   2    port         the announced service's port, 1..65535
 *   18+S   2    ttl          seconds the announcement stays valid (0 in BYE)
 *   20+S   4    queryId      the query this answers, 0 when unsolicited
 *   24+S   1    N            meta pair count, 0..32
 *   25+S   …    N × { keyLen u8 (1..63), key (A-Z a-z 0-9 . _ -), valueLen u16, value (UTF-8) }
 * ```
 *
 * No trailing bytes. The whole datagram is at most `maxSize` bytes (default and ceiling 1,472, so
 * it is never IP-fragmented on Ethernet). Decoding never throws: malformed, oversized and
 * unknown-version datagrams come back as `{ type: 'invalid', reason }` to be counted and ignored.
 */

export const DISCOVERY_MAGIC = 'NETD';
export const DISCOVERY_VERSION = 1;
/** Ceiling (and default) for a discovery datagram: the IPv4 safe payload. */
export const MAX_DISCOVERY_MESSAGE = 1472;
export const MAX_SERVICE_LENGTH = 63;
export const MAX_META_PAIRS = 32;
export const MAX_META_KEY_LENGTH = 63;

const TYPE_QUERY = 1;
const TYPE_ANNOUNCE = 2;
const TYPE_BYE = 3;
const HEADER = 8;
const SERVICE_RE = /^[a-z0-9][a-z0-9._-]*$/;
const META_KEY_RE = /^[A-Za-z0-9._-]+$/;

/** Someone asks who offers `service` (null: any service). */
export interface DiscoveryQuery {
  type: 'query';
  service: string | null;
  queryId: number;
  /** Zero padding bytes after the fixed fields (encode: how many to add; decode: how many came). */
  padding?: number;
}

/** A service instance is available (or, for `bye`, going away). */
export interface DiscoveryAnnouncement {
  type: 'announce' | 'bye';
  service: string;
  /** 16 hex digits identifying the announcing process. */
  instance: string;
  port: number;
  ttl: number;
  /** The query this answers; 0 for unsolicited announcements. */
  queryId: number;
  /** A null-prototype object, so keys like `__proto__` are plain data. */
  meta: Record<string, string>;
}

/** Why a datagram was ignored. */
export type DiscoveryInvalidReason =
  | 'too-large'
  | 'truncated'
  | 'bad-magic'
  | 'unsupported-version'
  | 'unknown-type'
  | 'bad-service'
  | 'bad-port'
  | 'bad-meta'
  | 'bad-utf8'
  | 'trailing-bytes';

export interface DiscoveryInvalid {
  type: 'invalid';
  reason: DiscoveryInvalidReason;
}

export type DiscoveryMessage = DiscoveryQuery | DiscoveryAnnouncement;

/** Checks a service name; returns an error message or undefined. */
export function serviceNameProblem(service: string): string | undefined {
  if (typeof service !== 'string' || service.length === 0 || service.length > MAX_SERVICE_LENGTH) {
    return `service must be 1..${MAX_SERVICE_LENGTH} characters`;
  }
  if (!SERVICE_RE.test(service)) return `service ${JSON.stringify(service)} may only use a-z 0-9 . _ -`;
  return undefined;
}

/**
 * Encodes a message. Throws a plain `RangeError`/`TypeError` describing the problem for invalid
 * input (the I/O layer turns it into `ERR_UDP_DISCOVERY_ENCODE`); never produces bytes that
 * `decodeDiscoveryMessage` would reject.
 */
export function encodeDiscoveryMessage(message: DiscoveryMessage, maxSize = MAX_DISCOVERY_MESSAGE): Buffer {
  const service = message.type === 'query' ? (message.service ?? '') : message.service;
  if (!(message.type === 'query' && service === '')) {
    const problem = serviceNameProblem(service);
    if (problem !== undefined) throw new TypeError(problem);
  }
  checkUint('queryId', message.queryId, 0xffffffff);
  if (message.type === 'query') {
    const padding = message.padding ?? 0;
    const size = HEADER + service.length + 4 + padding;
    checkUint('padding', padding, MAX_DISCOVERY_MESSAGE);
    const limit = Math.min(maxSize, MAX_DISCOVERY_MESSAGE);
    if (size > limit)
      throw new RangeError(`discovery query of ${size} bytes exceeds the ${limit}-byte limit`);
    const out = Buffer.alloc(size);
    writeHeader(out, TYPE_QUERY, service);
    out.writeUInt32BE(message.queryId, HEADER + service.length);
    return out;
  }
  if (message.type !== 'announce' && message.type !== 'bye') throw new TypeError('unknown message type');
  if (!/^[0-9a-f]{16}$/.test(message.instance))
    throw new TypeError('instance must be 16 lowercase hex digits');
  checkUint('port', message.port, 65535);
  if (message.port === 0) throw new RangeError('port must be 1..65535');
  checkUint('ttl', message.ttl, 65535);
  const keys = Object.keys(message.meta);
  if (keys.length > MAX_META_PAIRS) throw new RangeError(`meta may have at most ${MAX_META_PAIRS} keys`);
  let size = HEADER + service.length + 17;
  for (const key of keys) {
    if (key.length > MAX_META_KEY_LENGTH || !META_KEY_RE.test(key)) {
      throw new TypeError(`meta key ${JSON.stringify(key)} must be 1..63 of A-Z a-z 0-9 . _ -`);
    }
    const value = message.meta[key];
    if (typeof value !== 'string') throw new TypeError(`meta value of ${key} must be a string`);
    size += 3 + key.length + Buffer.byteLength(value);
  }
  const limit = Math.min(maxSize, MAX_DISCOVERY_MESSAGE);
  if (size > limit)
    throw new RangeError(`discovery message of ${size} bytes exceeds the ${limit}-byte limit`);
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, message.type === 'announce' ? TYPE_ANNOUNCE : TYPE_BYE, service);
  let at = HEADER + service.length;
  at += out.write(message.instance, at, 'hex');
  at = out.writeUInt16BE(message.port, at);
  at = out.writeUInt16BE(message.ttl, at);
  at = out.writeUInt32BE(message.queryId, at);
  at = out.writeUInt8(keys.length, at);
  for (const key of keys) {
    const value = message.meta[key]!;
    at = out.writeUInt8(key.length, at);
    at += out.write(key, at, 'latin1');
    at = out.writeUInt16BE(Buffer.byteLength(value), at);
    at += out.write(value, at, 'utf8');
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one datagram. Never throws. */
export function decodeDiscoveryMessage(
  bytes: Uint8Array,
  maxSize = MAX_DISCOVERY_MESSAGE,
): DiscoveryMessage | DiscoveryInvalid {
  const length = bytes.byteLength;
  if (length > Math.min(maxSize, MAX_DISCOVERY_MESSAGE)) return invalid('too-large');
  if (length < HEADER) return invalid('truncated');
  if (bytes[0] !== 0x4e || bytes[1] !== 0x45 || bytes[2] !== 0x54 || bytes[3] !== 0x44)
    return invalid('bad-magic');
  if (bytes[4] !== DISCOVERY_VERSION) return invalid('unsupported-version');
  const type = bytes[5];
  if (type !== TYPE_QUERY && type !== TYPE_ANNOUNCE && type !== TYPE_BYE) return invalid('unknown-type');
  const serviceLength = bytes[7]!;
  if (serviceLength > MAX_SERVICE_LENGTH) return invalid('bad-service');
  let at = HEADER + serviceLength;
  if (length < at) return invalid('truncated');
  const service = ascii(bytes, HEADER, at);
  if (serviceLength === 0 ? type !== TYPE_QUERY : !SERVICE_RE.test(service)) return invalid('bad-service');
  if (type === TYPE_QUERY) {
    if (length < at + 4) return invalid('truncated');
    for (let i = at + 4; i < length; i++) if (bytes[i] !== 0) return invalid('trailing-bytes');
    return {
      type: 'query',
      service: serviceLength === 0 ? null : service,
      queryId: u32(bytes, at),
      padding: length - at - 4,
    };
  }
  if (length < at + 17) return invalid('truncated');
  let instance = '';
  for (let i = 0; i < 8; i++) instance += HEX[bytes[at + i]!];
  at += 8;
  const port = u16(bytes, at);
  if (port === 0) return invalid('bad-port');
  const ttl = u16(bytes, at + 2);
  const queryId = u32(bytes, at + 4);
  const pairs = bytes[at + 8]!;
  at += 9;
  if (pairs > MAX_META_PAIRS) return invalid('bad-meta');
  const meta: Record<string, string> = Object.create(null);
  for (let i = 0; i < pairs; i++) {
    if (length < at + 1) return invalid('truncated');
    const keyLength = bytes[at]!;
    if (keyLength === 0 || keyLength > MAX_META_KEY_LENGTH) return invalid('bad-meta');
    if (length < at + 1 + keyLength + 2) return invalid('truncated');
    const key = ascii(bytes, at + 1, at + 1 + keyLength);
    if (!META_KEY_RE.test(key) || key in meta) return invalid('bad-meta');
    at += 1 + keyLength;
    const valueLength = u16(bytes, at);
    at += 2;
    if (length < at + valueLength) return invalid('truncated');
    let value: string;
    try {
      value = utf8.decode(bytes.subarray(at, at + valueLength));
    } catch {
      return invalid('bad-utf8');
    }
    meta[key] = value;
    at += valueLength;
  }
  if (at !== length) return invalid('trailing-bytes');
  return { type: type === TYPE_ANNOUNCE ? 'announce' : 'bye', service, instance, port, ttl, queryId, meta };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const INVALID = new Map<DiscoveryInvalidReason, DiscoveryInvalid>();

function invalid(reason: DiscoveryInvalidReason): DiscoveryInvalid {
  let value = INVALID.get(reason);
  if (value === undefined) {
    value = Object.freeze({ type: 'invalid', reason }) as DiscoveryInvalid;
    INVALID.set(reason, value);
  }
  return value;
}

function writeHeader(out: Buffer, type: number, service: string): void {
  out.write(DISCOVERY_MAGIC, 0, 'latin1');
  out[4] = DISCOVERY_VERSION;
  out[5] = type;
  out[6] = 0;
  out[7] = service.length;
  out.write(service, HEADER, 'latin1');
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function u32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new RangeError(`${name} must be an integer in 0..${max}`);
}
