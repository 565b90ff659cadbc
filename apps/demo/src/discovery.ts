/**
 * UDP discovery wire format (sans-I/O; the sockets are @net/udp). A client sends a probe datagram
 * to the discovery port (broadcast and/or a known host); each server answers the sender with one
 * JSON datagram describing its endpoints. The probe is padded to 256 bytes so a spoofed-source
 * probe cannot be amplified: the answer is never much larger than the question.
 */
export const PROBE_MAGIC = 'NETCHAT-DISCOVER/1';
export const PROBE_SIZE = 256;
export const MAX_ANNOUNCE_BYTES = 1024;

export interface Announcement {
  /** Always "net-chat". */
  service: 'net-chat';
  v: 1;
  name: string;
  /** Host to connect to; null means "the address this datagram came from". */
  host: string | null;
  tcp?: number;
  http?: number;
  tls?: number;
  https?: number;
  /** SHA-256 SPKI pin (base64) of the dev CA, so a client can trust TLS without a CA file. */
  caPin?: string;
}

export function encodeProbe(): Buffer {
  const buf = Buffer.alloc(PROBE_SIZE, 0x20);
  buf.write(`${PROBE_MAGIC}\n`, 0, 'latin1');
  return buf;
}

export function isProbe(data: Uint8Array): boolean {
  if (data.length < PROBE_SIZE || data.length > 2048) return false;
  return Buffer.from(data.buffer, data.byteOffset, PROBE_MAGIC.length).toString('latin1') === PROBE_MAGIC;
}

export function encodeAnnouncement(a: Announcement): Buffer {
  const buf = Buffer.from(JSON.stringify(a));
  if (buf.length > MAX_ANNOUNCE_BYTES) throw new RangeError('announcement too large');
  return buf;
}

const isPort = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536);

/** Parse an answer; anything malformed (or not ours) is ignored by returning undefined. */
export function decodeAnnouncement(data: Uint8Array): Announcement | undefined {
  if (data.length > MAX_ANNOUNCE_BYTES) return undefined;
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<Announcement>;
    if (v.service !== 'net-chat' || v.v !== 1 || typeof v.name !== 'string') return undefined;
    if (v.host !== null && typeof v.host !== 'string') return undefined;
    if (![v.tcp, v.http, v.tls, v.https].every(isPort)) return undefined;
    if (v.caPin !== undefined && typeof v.caPin !== 'string') return undefined;
    return v as Announcement;
  } catch {
    return undefined;
  }
}
