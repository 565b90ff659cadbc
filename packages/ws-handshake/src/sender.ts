import { applyMask, randomMask } from './mask.js';

/*
 * Frame serialization (RFC 6455 §5.2). Pure functions: they build the bytes, the connection
 * decides how to write them. Small frames become one buffer (header + payload copied together,
 * one syscall, no writev bookkeeping); large unmasked payloads are left where they are and sent
 * with the header as a second buffer so megabytes are never copied.
 */

/** Payloads at or below this size are copied next to their header into one buffer. */
export const COPY_THRESHOLD = 16 * 1024;

export function headerLength(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/**
 * Write a frame header into `target` at 0 and return its length. `mask` is copied after the
 * length when given.
 */
export function writeHeader(
  target: Buffer,
  opcode: number,
  fin: boolean,
  rsv1: boolean,
  payloadLength: number,
  mask: Uint8Array | null,
): number {
  target[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === null ? 0 : 0x80;
  let off: number;
  if (payloadLength < 126) {
    target[1] = maskBit | payloadLength;
    off = 2;
  } else if (payloadLength < 0x10000) {
    target[1] = maskBit | 126;
    target[2] = payloadLength >>> 8;
    target[3] = payloadLength & 0xff;
    off = 4;
  } else {
    target[1] = maskBit | 127;
    const hi = Math.floor(payloadLength / 0x100000000);
    target.writeUInt32BE(hi, 2);
    target.writeUInt32BE(payloadLength >>> 0, 6);
    off = 10;
  }
  if (mask !== null) {
    target[off] = mask[0]!;
    target[off + 1] = mask[1]!;
    target[off + 2] = mask[2]!;
    target[off + 3] = mask[3]!;
    off += 4;
  }
  return off;
}

/**
 * Encode a frame whose payload is a Buffer. Returns one buffer, or `[header, payload]` when the
 * payload is large and unmasked. Masked payloads are always copied: the caller's buffer is
 * never modified.
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  rsv1: boolean,
  masked: boolean,
): Buffer | [Buffer, Buffer] {
  const len = payload.length;
  const mask = masked ? randomMask() : null;
  const hlen = headerLength(len, masked);
  if (!masked && len > COPY_THRESHOLD) {
    const header = Buffer.allocUnsafe(hlen);
    writeHeader(header, opcode, fin, rsv1, len, null);
    const body = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return [header, body];
  }
  const out = Buffer.allocUnsafe(hlen + len);
  writeHeader(out, opcode, fin, rsv1, len, mask);
  out.set(payload, hlen);
  if (mask !== null && len > 0) applyMask(out.subarray(hlen), mask, 0);
  return out;
}

/**
 * Encode a text frame straight from a string: the UTF-8 bytes are written into the frame buffer
 * without an intermediate Buffer.
 */
export function encodeTextFrame(
  opcode: number,
  text: string,
  byteLength: number,
  fin: boolean,
  masked: boolean,
): Buffer {
  const mask = masked ? randomMask() : null;
  const hlen = headerLength(byteLength, masked);
  const out = Buffer.allocUnsafe(hlen + byteLength);
  writeHeader(out, opcode, fin, false, byteLength, mask);
  if (byteLength > 0) {
    out.write(text, hlen, byteLength, 'utf8');
    if (mask !== null) applyMask(out.subarray(hlen), mask, 0);
  }
  return out;
}

/** Close frame payload: 2-byte status code and UTF-8 reason, or empty for "no status". */
export function closePayload(code: number | undefined, reason: string): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const len = Buffer.byteLength(reason);
  const buf = Buffer.allocUnsafe(2 + len);
  buf.writeUInt16BE(code, 0);
  if (len > 0) buf.write(reason, 2, len, 'utf8');
  return buf;
}
