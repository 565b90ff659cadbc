import { Buffer } from 'node:buffer';
import { asBuffer, BufferList, readUIntFrom } from './buffer-list.js';
import type { Codec, CodecFactory } from './codec.js';
import { FrameTooLargeError, InvalidFrameError, InvalidOptionError, TruncatedFrameError } from './errors.js';
import { FRAME_END, type FrameEvent } from './frame-events.js';
import type { FrameStream } from './frame-stream.js';
import { Frame, isFrame } from './frame.js';
import { checkInt, type LengthPrefixedOptions } from './options.js';

/** What a length-prefixed codec encodes: bytes, a UTF-8 string, or a received `Frame` (forwarded by reference). */
export type LengthPrefixedEncodable = Uint8Array | string | Frame;

/** Payloads below this are copied next to their header (one small write beats a two-buffer writev). */
const COPY_THRESHOLD = 2048;
/** A 64-bit value needs at most 10 LEB128 bytes; more is garbage, not a length. */
const MAX_VARINT_BYTES = 10;
const NEED_MORE = -1;
const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
const DEFAULT_MAX_STREAMED_FRAME = 4 * 1024 * 1024 * 1024;
const DEFAULT_STREAM_THRESHOLD = 1024 * 1024;

/**
 * Frames with a length field (Netty's LengthFieldBasedFrameDecoder + LengthFieldPrepender):
 *
 * ```text
 * | lengthFieldOffset bytes | length field | lengthField + lengthAdjustment bytes |
 * ```
 *
 * The first `initialBytesToStrip` bytes of each frame are dropped from the decoded message.
 *
 * `TFrame` is `Buffer` (default, `frames: 'buffer'`), `Frame` (`frames: 'segments'`) or
 * `FrameEvent` (`frames: 'stream'`, then `frameEvents` is true); it must match the option, which
 * `lengthPrefixed()` guarantees.
 */
export class LengthPrefixedCodec<TFrame extends Buffer | Frame | FrameEvent = Buffer>
  implements Codec<TFrame, LengthPrefixedEncodable>
{
  readonly #fieldLength: number; // 0 = varint
  readonly #littleEndian: boolean;
  readonly #fieldOffset: number;
  readonly #adjustment: number;
  readonly #strip: number | undefined;
  readonly #maxFrameLength: number;
  readonly #maxFieldValue: number;
  readonly #segmented: boolean;
  readonly #streamThreshold: number;
  /** True with `frames: 'stream'`: `decode` pushes `FrameEvent`s (see `Codec.frameEvents`). */
  readonly frameEvents: boolean;

  readonly #list = new BufferList();
  /** Total length of the frame at the head of `#list` once its header is parsed, else -1. */
  #frameLength = NEED_MORE;
  /** Header size of that frame (offset + length field), needed for the default strip. */
  #headerEnd = 0;
  // Streaming mode: inside a streamed frame, bytes still to drop (strip) and payload bytes to pass on.
  #streaming = false;
  #toSkip = 0;
  #remaining = 0;

  constructor(options: LengthPrefixedOptions = {}) {
    const field = options.lengthFieldLength ?? 4;
    if (field !== 1 && field !== 2 && field !== 4 && field !== 8 && field !== 'varint') {
      throw new InvalidOptionError('lengthFieldLength', "expected 1, 2, 4, 8 or 'varint'");
    }
    const order = options.byteOrder ?? 'big';
    if (order !== 'big' && order !== 'little')
      throw new InvalidOptionError('byteOrder', "expected 'big' or 'little'");
    this.#fieldLength = field === 'varint' ? 0 : field;
    this.#littleEndian = order === 'little';
    this.#fieldOffset = checkInt('lengthFieldOffset', options.lengthFieldOffset ?? 0, 0, 1 << 20);
    const frames = options.frames ?? 'buffer';
    if (frames !== 'buffer' && frames !== 'segments' && frames !== 'stream')
      throw new InvalidOptionError('frames', "expected 'buffer', 'segments' or 'stream'");
    this.frameEvents = frames === 'stream';
    this.#maxFrameLength = checkInt(
      'maxFrameLength',
      options.maxFrameLength ?? (this.frameEvents ? DEFAULT_MAX_STREAMED_FRAME : DEFAULT_MAX_FRAME),
      1,
    );
    if (options.streamThreshold !== undefined && !this.frameEvents)
      throw new InvalidOptionError('streamThreshold', "only applies with frames: 'stream'");
    // The 1 MiB default is capped by a smaller maxFrameLength (no frame could reach it anyway).
    this.#streamThreshold =
      options.streamThreshold === undefined
        ? Math.min(DEFAULT_STREAM_THRESHOLD, this.#maxFrameLength)
        : checkInt('streamThreshold', options.streamThreshold, 0, this.#maxFrameLength);
    // Beyond ±maxFrameLength no frame could be valid, and a bounded adjustment keeps every sum of
    // header, length and adjustment an exact integer.
    this.#adjustment = checkInt(
      'lengthAdjustment',
      options.lengthAdjustment ?? 0,
      -this.#maxFrameLength,
      this.#maxFrameLength,
    );
    this.#strip =
      options.initialBytesToStrip === undefined
        ? undefined
        : checkInt('initialBytesToStrip', options.initialBytesToStrip, 0);
    this.#segmented = frames === 'segments';
    this.#maxFieldValue = field === 'varint' || field === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * field) - 1;
  }

  get bufferedBytes(): number {
    return this.#list.length;
  }

  reset(): void {
    this.#list.clear();
    this.#frameLength = NEED_MORE;
    this.#streaming = false;
    this.#toSkip = this.#remaining = 0;
  }

  decode(chunk: Uint8Array, out: TFrame[]): void {
    if (this.frameEvents) {
      this.#decodeEvents(chunk, out as FrameEvent[]);
      return;
    }
    if (this.#segmented) {
      this.#decodeSegments(chunk, out as Frame[]);
      return;
    }
    this.#decodeContiguous(chunk, out as Buffer[]);
  }

  #decodeContiguous(chunk: Uint8Array, out: Buffer[]): void {
    const list = this.#list;
    let buf: Buffer;
    if (list.length === 0) {
      buf = asBuffer(chunk);
    } else {
      // Finish the frame that spans chunks, then go back to the fast path for the rest.
      list.push(chunk);
      for (;;) {
        if (this.#frameLength === NEED_MORE) {
          this.#frameLength = this.#headerFromList(list);
          if (this.#frameLength === NEED_MORE) return;
        }
        if (list.length < this.#frameLength) return;
        const frame = list.take(this.#frameLength);
        out.push(frame.subarray(this.#strip ?? this.#headerEnd));
        this.#frameLength = NEED_MORE;
        if (list.length === 0) return;
        if (list.chunkCount === 1) {
          buf = list.takeAll();
          break;
        }
      }
    }
    // Fast path: parse straight out of one chunk; whole frames become zero-copy views.
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      const frameLength = this.#headerFromBuffer(buf, pos, end);
      if (frameLength === NEED_MORE || end - pos < frameLength) break;
      out.push(buf.subarray(pos + (this.#strip ?? this.#headerEnd), pos + frameLength));
      pos += frameLength;
    }
    if (pos < end) {
      list.push(pos === 0 ? buf : buf.subarray(pos));
      this.#frameLength = NEED_MORE;
    }
  }

  /**
   * Like `#decodeContiguous`, but a frame spanning chunks becomes a `Frame` of views into them
   * instead of a copy. Headers are still parsed from the list (a header split across chunks is
   * read byte by byte, never joined).
   */
  #decodeSegments(chunk: Uint8Array, out: Frame[]): void {
    const list = this.#list;
    let buf: Buffer;
    if (list.length === 0) {
      buf = asBuffer(chunk);
    } else {
      list.push(chunk);
      for (;;) {
        if (this.#frameLength === NEED_MORE) {
          this.#frameLength = this.#headerFromList(list);
          if (this.#frameLength === NEED_MORE) return;
        }
        const frameLength = this.#frameLength;
        if (list.length < frameLength) return;
        const strip = this.#strip ?? this.#headerEnd;
        list.skip(strip);
        const segments: Buffer[] = [];
        list.takeSegments(frameLength - strip, segments);
        out.push(Frame.of(segments, frameLength - strip));
        this.#frameLength = NEED_MORE;
        if (list.length === 0) return;
        if (list.chunkCount === 1) {
          buf = list.takeAll(); // a view: the rest lies in one chunk
          break;
        }
      }
    }
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      const frameLength = this.#headerFromBuffer(buf, pos, end);
      if (frameLength === NEED_MORE || end - pos < frameLength) break;
      const start = pos + (this.#strip ?? this.#headerEnd);
      pos += frameLength;
      out.push(Frame.of(pos > start ? [buf.subarray(start, pos)] : [], pos - start));
    }
    if (pos < end) {
      list.push(pos === 0 ? buf : buf.subarray(pos));
      this.#frameLength = NEED_MORE;
    }
  }

  /**
   * Streaming mode: frames below the threshold are buffered and pushed whole; larger ones are
   * pushed as `start`, then a `chunk` (a view, never a copy) for every piece of payload as it
   * arrives, then `end`. Nothing of a streamed frame stays in the codec, so memory is bounded by
   * the threshold whatever the frame length.
   */
  #decodeEvents(chunk: Uint8Array, out: FrameEvent[]): void {
    const list = this.#list;
    if (chunk.byteLength > 0) list.push(chunk);
    for (;;) {
      if (this.#streaming) {
        if (this.#toSkip > 0) {
          const n = Math.min(this.#toSkip, list.length);
          list.skip(n);
          this.#toSkip -= n;
          if (this.#toSkip > 0) return;
        }
        if (this.#remaining > 0) {
          const n = Math.min(this.#remaining, list.length);
          if (n === 0) return;
          const views: Buffer[] = [];
          list.takeSegments(n, views);
          for (const data of views) out.push({ type: 'chunk', data });
          this.#remaining -= n;
          if (this.#remaining > 0) return;
        }
        this.#streaming = false;
        out.push(FRAME_END);
        continue;
      }
      if (this.#frameLength === NEED_MORE) {
        this.#frameLength = this.#headerFromList(list);
        if (this.#frameLength === NEED_MORE) return;
      }
      const frameLength = this.#frameLength;
      const strip = this.#strip ?? this.#headerEnd;
      const payload = frameLength - strip;
      if (payload < this.#streamThreshold) {
        if (list.length < frameLength) return;
        out.push({ type: 'frame', payload: list.take(frameLength).subarray(strip) });
      } else {
        out.push({ type: 'start', length: payload });
        this.#streaming = true;
        this.#toSkip = strip;
        this.#remaining = payload;
      }
      this.#frameLength = NEED_MORE;
    }
  }

  end(_out: TFrame[]): void {
    const left = this.#list.length + (this.#streaming ? this.#toSkip + this.#remaining : 0);
    const inFrame = this.#list.length > 0 || this.#streaming;
    this.reset();
    if (inFrame) throw new TruncatedFrameError(left);
  }

  encodeInto(message: LengthPrefixedEncodable, target: Buffer, offset: number): number {
    const isString = typeof message === 'string';
    if (!isString && !(message instanceof Uint8Array))
      return this.#encodeFrameInto(frameOf(message), target, offset);
    if (!isString && message.byteLength >= COPY_THRESHOLD) return -1; // zero-copy via encode()
    const payloadLength = isString ? Buffer.byteLength(message) : message.byteLength;
    const value = this.#fieldValue(payloadLength);
    const fieldLength = this.#fieldLength === 0 ? varintSize(value) : this.#fieldLength;
    const headerLength = this.#fieldOffset + fieldLength;
    const total = headerLength + payloadLength;
    if (total > this.#maxFrameLength) throw new FrameTooLargeError(total, this.#maxFrameLength);
    if (offset + total > target.length) return -1;
    this.#writeHeader(target, offset, value, fieldLength);
    if (isString) target.write(message, offset + headerLength, 'utf8');
    else target.set(message, offset + headerLength);
    return total;
  }

  #fieldValue(payloadLength: number): number {
    const value = payloadLength - this.#adjustment;
    if (value < 0) {
      throw new InvalidFrameError(
        `payload of ${payloadLength} bytes is shorter than -lengthAdjustment (${-this.#adjustment})`,
      );
    }
    if (value > this.#maxFieldValue) throw new FrameTooLargeError(payloadLength, this.#maxFieldValue);
    return value;
  }

  #encodeFrameInto(frame: Frame, target: Buffer, offset: number): number {
    if (frame.length >= COPY_THRESHOLD) return -1; // by reference via encode()
    const value = this.#fieldValue(frame.length);
    const fieldLength = this.#fieldLength === 0 ? varintSize(value) : this.#fieldLength;
    const headerLength = this.#fieldOffset + fieldLength;
    const total = headerLength + frame.length;
    if (total > this.#maxFrameLength) throw new FrameTooLargeError(total, this.#maxFrameLength);
    if (offset + total > target.length) return -1;
    this.#writeHeader(target, offset, value, fieldLength);
    let at = offset + headerLength;
    for (const segment of frame.segments) {
      target.set(segment, at);
      at += segment.length;
    }
    return total;
  }

  /** Header followed by the frame's segments, by reference: the connection writes them with one writev. */
  #encodeFrame(frame: Frame): readonly Uint8Array[] {
    const value = this.#fieldValue(frame.length);
    const fieldLength = this.#fieldLength === 0 ? varintSize(value) : this.#fieldLength;
    const headerLength = this.#fieldOffset + fieldLength;
    const total = headerLength + frame.length;
    if (total > this.#maxFrameLength) throw new FrameTooLargeError(total, this.#maxFrameLength);
    const header = Buffer.allocUnsafe(headerLength);
    this.#writeHeader(header, 0, value, fieldLength);
    return [header, ...frame.segments];
  }

  /**
   * The header alone for a payload of `payloadLength` bytes, to send a frame whose payload follows
   * in pieces (`Connection.sendStream`). Same checks as `encode`.
   */
  encodeHeader(payloadLength: number): Buffer {
    const value = this.#fieldValue(payloadLength);
    const fieldLength = this.#fieldLength === 0 ? varintSize(value) : this.#fieldLength;
    const headerLength = this.#fieldOffset + fieldLength;
    const total = headerLength + payloadLength;
    if (total > this.#maxFrameLength) throw new FrameTooLargeError(total, this.#maxFrameLength);
    const header = Buffer.allocUnsafe(headerLength);
    this.#writeHeader(header, 0, value, fieldLength);
    return header;
  }

  encode(message: LengthPrefixedEncodable): Uint8Array | readonly Uint8Array[] {
    const isString = typeof message === 'string';
    if (!isString && !(message instanceof Uint8Array)) return this.#encodeFrame(frameOf(message));
    const payloadLength = isString ? Buffer.byteLength(message) : message.byteLength;
    const value = this.#fieldValue(payloadLength);
    const fieldLength = this.#fieldLength === 0 ? varintSize(value) : this.#fieldLength;
    const headerLength = this.#fieldOffset + fieldLength;
    const total = headerLength + payloadLength;
    if (total > this.#maxFrameLength) throw new FrameTooLargeError(total, this.#maxFrameLength);

    if (isString || payloadLength < COPY_THRESHOLD) {
      const frame = Buffer.allocUnsafe(total);
      this.#writeHeader(frame, 0, value, fieldLength);
      if (isString) frame.write(message, headerLength, 'utf8');
      else frame.set(message, headerLength);
      return frame;
    }
    const header = Buffer.allocUnsafe(headerLength);
    this.#writeHeader(header, 0, value, fieldLength);
    return [header, message];
  }

  #writeHeader(target: Buffer, start: number, value: number, fieldLength: number): void {
    const at = start + this.#fieldOffset;
    if (at > start) target.fill(0, start, at);
    if (this.#fieldLength === 0) {
      let v = value;
      let i = at;
      while (v >= 0x80) {
        target[i++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      target[i] = v;
      return;
    }
    const le = this.#littleEndian;
    switch (fieldLength) {
      case 1:
        target[at] = value;
        break;
      case 2:
        if (le) target.writeUInt16LE(value, at);
        else target.writeUInt16BE(value, at);
        break;
      case 4:
        if (le) target.writeUInt32LE(value, at);
        else target.writeUInt32BE(value, at);
        break;
      default: {
        const high = Math.floor(value / 0x1_0000_0000);
        const low = value >>> 0;
        if (le) {
          target.writeUInt32LE(low, at);
          target.writeUInt32LE(high, at + 4);
        } else {
          target.writeUInt32BE(high, at);
          target.writeUInt32BE(low, at + 4);
        }
      }
    }
  }

  /** Frame length of the frame at `pos`, or NEED_MORE. Sets `#headerEnd`. Throws on bad headers. */
  #headerFromBuffer(buf: Buffer, pos: number, end: number): number {
    const at = pos + this.#fieldOffset;
    let value: number;
    let fieldLength = this.#fieldLength;
    if (fieldLength !== 0) {
      if (at + fieldLength > end) return NEED_MORE;
      value = readUIntFrom(buf, at, fieldLength, this.#littleEndian);
    } else {
      value = 0;
      let scale = 1;
      let i = 0;
      for (;;) {
        if (at + i >= end) {
          this.#checkPartialVarint(value, i);
          return NEED_MORE;
        }
        const byte = buf[at + i]!;
        value += (byte & 0x7f) * scale;
        scale *= 0x80;
        i++;
        if (byte < 0x80) break;
        this.#checkPartialVarint(value, i);
      }
      fieldLength = i;
    }
    return this.#frameLengthOf(value, fieldLength);
  }

  #headerFromList(list: BufferList): number {
    const at = this.#fieldOffset;
    let value: number;
    let fieldLength = this.#fieldLength;
    if (fieldLength !== 0) {
      if (at + fieldLength > list.length) return NEED_MORE;
      value = list.readUInt(at, fieldLength, this.#littleEndian);
    } else {
      value = 0;
      let scale = 1;
      let i = 0;
      for (;;) {
        if (at + i >= list.length) {
          this.#checkPartialVarint(value, i);
          return NEED_MORE;
        }
        const byte = list.byteAt(at + i);
        value += (byte & 0x7f) * scale;
        scale *= 0x80;
        i++;
        if (byte < 0x80) break;
        this.#checkPartialVarint(value, i);
      }
      fieldLength = i;
    }
    return this.#frameLengthOf(value, fieldLength);
  }

  /** Fail fast while a varint is still arriving: its lower bound may already be too big. */
  #checkPartialVarint(lowerBound: number, bytes: number): void {
    if (bytes >= MAX_VARINT_BYTES)
      throw new InvalidFrameError(`varint length field longer than ${MAX_VARINT_BYTES} bytes`);
    const frame = this.#fieldOffset + bytes + lowerBound + this.#adjustment;
    if (frame > this.#maxFrameLength) throw new FrameTooLargeError(frame, this.#maxFrameLength);
  }

  #frameLengthOf(value: number, fieldLength: number): number {
    // An 8-byte or varint length above 2^53 - 1 was rounded when read: refuse it rather than frame
    // by an inexact number.
    if (value > Number.MAX_SAFE_INTEGER) throw new FrameTooLargeError(value, this.#maxFrameLength);
    const headerEnd = this.#fieldOffset + fieldLength;
    const frameLength = headerEnd + value + this.#adjustment;
    if (frameLength > this.#maxFrameLength) throw new FrameTooLargeError(frameLength, this.#maxFrameLength);
    if (frameLength < headerEnd) {
      throw new InvalidFrameError(
        `length field ${value} with lengthAdjustment ${this.#adjustment} gives a frame shorter than its header`,
      );
    }
    const strip = this.#strip ?? headerEnd;
    if (strip > frameLength) {
      throw new InvalidFrameError(`initialBytesToStrip ${strip} exceeds frame length ${frameLength}`);
    }
    this.#headerEnd = headerEnd;
    return frameLength;
  }
}

function frameOf(message: unknown): Frame {
  if (isFrame(message)) return message;
  throw new InvalidFrameError('can only encode a Uint8Array, a string or a Frame');
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/**
 * Codec factory for length-prefixed binary frames. Decodes to `Buffer` (default) or, with
 * `frames: 'segments'`, to a zero-copy `Frame`; with `frames: 'stream'`, connections deliver a
 * `FrameStream` for each frame of at least `streamThreshold` bytes and a `Buffer` for smaller ones.
 * Encodes `Uint8Array`, `string` (UTF-8) or a `Frame`. Options are validated now, so mistakes
 * surface at startup.
 *
 * With `frames: 'stream'` the codec itself (used without a connection) pushes `FrameEvent`s and
 * has `frameEvents: true`; the connection turns them into `Buffer | FrameStream` messages, which is
 * the type this factory declares.
 *
 * @example
 * createServer({ codec: lengthPrefixed({ lengthFieldLength: 2 }) }, onConnection)
 * createServer({ codec: lengthPrefixed({ frames: 'segments' }) }, (conn) => conn.on('message', (f) => conn.write(f)))
 */
export function lengthPrefixed(
  options: LengthPrefixedOptions & { frames: 'segments' },
): CodecFactory<Frame, LengthPrefixedEncodable>;
export function lengthPrefixed(
  options: LengthPrefixedOptions & { frames: 'stream' },
): CodecFactory<Buffer | FrameStream, LengthPrefixedEncodable>;
export function lengthPrefixed(
  options?: LengthPrefixedOptions & { frames?: 'buffer' },
): CodecFactory<Buffer, LengthPrefixedEncodable>;
export function lengthPrefixed(
  options?: LengthPrefixedOptions,
): CodecFactory<Buffer | Frame | FrameStream, LengthPrefixedEncodable>;
export function lengthPrefixed(
  options: LengthPrefixedOptions = {},
): CodecFactory<Buffer | Frame | FrameStream, LengthPrefixedEncodable> {
  new LengthPrefixedCodec(options);
  const frozen = { ...options };
  // In stream mode the codec's events become FrameStreams in the connection (see Codec.frameEvents).
  return () =>
    new LengthPrefixedCodec<Buffer | Frame | FrameEvent>(frozen) as unknown as Codec<
      Buffer | Frame | FrameStream,
      LengthPrefixedEncodable
    >;
}
