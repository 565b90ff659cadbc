/**
 * The request/response header (sans-I/O: bytes in, frames out, no sockets).
 *
 * ```
 * offset size field
 *   0     2   magic   0xAE 0x55
 *   2     1   version 1
 *   3     1   flags   bit 0 REPLY, bit 1 ERROR (replies only); other bits reserved:
 *                     senders write 0, receivers ignore them
 *   4     4   id      unsigned 32-bit, big-endian, chosen by the requester
 *   8     …   payload (the rest of the datagram, possibly empty)
 * ```
 *
 * A reply echoes the request's id. An ERROR reply carries an optional UTF-8 message as payload.
 * Decoding never throws: anything that is not a well-formed frame comes back as `kind: 'invalid'`
 * with a reason, so garbage on the wire is counted, not fatal.
 */

/** The two bytes every request/response frame starts with (0xAE 0x55). */
export const REQUEST_MAGIC = 0xae55;
/** The header version this package writes and accepts. */
export const REQUEST_VERSION = 1;
/** Header length in bytes; the payload starts here. */
export const REQUEST_HEADER_SIZE = 8;
/** Flags bit: this frame is a reply (it echoes the request's id). */
export const FLAG_REPLY = 0x01;
/** Flags bit on a reply: the handler failed; the payload is the UTF-8 error message. */
export const FLAG_ERROR = 0x02;

/** Why a datagram was not a frame. */
export type FrameInvalidReason = 'too-short' | 'bad-magic' | 'unsupported-version';

/** A decoded request/response frame. `payload` is a view into the datagram, not a copy. */
export type Frame =
  | { kind: 'request'; id: number; payload: Buffer }
  | { kind: 'reply'; id: number; payload: Buffer }
  | { kind: 'error'; id: number; payload: Buffer }
  | { kind: 'invalid'; reason: FrameInvalidReason };

/** The kinds a valid frame can have. */
export type FrameKind = 'request' | 'reply' | 'error';

const INVALID_SHORT: Frame = Object.freeze({ kind: 'invalid', reason: 'too-short' });
const INVALID_MAGIC: Frame = Object.freeze({ kind: 'invalid', reason: 'bad-magic' });
const INVALID_VERSION: Frame = Object.freeze({ kind: 'invalid', reason: 'unsupported-version' });

/** Writes the 8-byte header at `offset` of `target`. */
export function writeFrameHeader(target: Uint8Array, offset: number, kind: FrameKind, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff)
    throw new RangeError(`id must be a uint32, got ${id}`);
  target[offset] = REQUEST_MAGIC >>> 8;
  target[offset + 1] = REQUEST_MAGIC & 0xff;
  target[offset + 2] = REQUEST_VERSION;
  target[offset + 3] = kind === 'request' ? 0 : kind === 'reply' ? FLAG_REPLY : FLAG_REPLY | FLAG_ERROR;
  target[offset + 4] = id >>> 24;
  target[offset + 5] = (id >>> 16) & 0xff;
  target[offset + 6] = (id >>> 8) & 0xff;
  target[offset + 7] = id & 0xff;
}

/** Encodes a whole frame (header + payload) into one new buffer. */
export function encodeFrame(kind: FrameKind, id: number, payload: Uint8Array | string = EMPTY): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  const out = Buffer.allocUnsafe(REQUEST_HEADER_SIZE + length);
  writeFrameHeader(out, 0, kind, id);
  if (typeof payload === 'string') out.write(payload, REQUEST_HEADER_SIZE, 'utf8');
  else out.set(payload, REQUEST_HEADER_SIZE);
  return out;
}

/** Decodes one datagram. Never throws. */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.byteLength < REQUEST_HEADER_SIZE) return INVALID_SHORT;
  if (bytes[0] !== REQUEST_MAGIC >>> 8 || bytes[1] !== (REQUEST_MAGIC & 0xff)) return INVALID_MAGIC;
  if (bytes[2] !== REQUEST_VERSION) return INVALID_VERSION;
  const flags = bytes[3]!;
  const id = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  const payload = Buffer.from(bytes.buffer, bytes.byteOffset + REQUEST_HEADER_SIZE, bytes.byteLength - 8);
  if ((flags & FLAG_REPLY) === 0) return { kind: 'request', id, payload };
  return { kind: (flags & FLAG_ERROR) === 0 ? 'reply' : 'error', id, payload };
}

/** True if the datagram starts like a frame of this protocol (cheap pre-filter). */
export function looksLikeFrame(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= REQUEST_HEADER_SIZE &&
    bytes[0] === REQUEST_MAGIC >>> 8 &&
    bytes[1] === (REQUEST_MAGIC & 0xff)
  );
}

const EMPTY = new Uint8Array(0);
