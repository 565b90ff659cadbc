import { Buffer } from 'node:buffer';

const EMPTY = Buffer.alloc(0);
const NO_SEGMENTS: readonly Buffer[] = Object.freeze([]);
/** Set by `Frame.of` for the very next constructor call only (skips re-validation). */
let trusted: readonly Buffer[] | undefined;
let trustedLength = 0;
/**
 * The ESM and CommonJS builds each define a `Frame` class; a frame decoded by one build may be sent
 * through a connection of the other. Both builds mark their prototype with this registry symbol.
 */
const FRAME_BRAND = Symbol.for('@net/tcp:frame');
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/** True for a `Frame` of either build of this package. */
export function isFrame(value: unknown): value is Frame {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [FRAME_BRAND]?: unknown })[FRAME_BRAND] === true
  );
}

/**
 * One decoded frame as a list of zero-copy views into the received chunks, delivered by
 * `lengthPrefixed({ frames: 'segments' })`. A frame that straddles two socket reads is two
 * segments instead of a fresh copy (Netty's composite buffer, reduced to what a frame needs).
 *
 * The segments share memory with the chunks they came from: a retained `Frame` keeps those chunks
 * alive, and the bytes must be treated as read-only. Pass a `Frame` straight to `send()` /
 * `write()` / `sendRaw()` to forward it without copying.
 */
export class Frame implements Iterable<Buffer> {
  /** The payload in order; never contains an empty segment. Do not modify. */
  readonly segments: readonly Buffer[];
  /** Payload length in bytes (the sum of the segment lengths). */
  readonly length: number;
  #joined: Buffer | undefined;

  /**
   * @param segments - payload pieces in order; kept by reference (not copied). Empty ones are dropped.
   */
  constructor(segments: readonly Uint8Array[]) {
    if (trusted !== undefined) {
      this.segments = trusted;
      this.length = trustedLength;
      trusted = undefined;
      return;
    }
    let length = 0;
    const list: Buffer[] = [];
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i]!;
      if (s.byteLength === 0) continue;
      length += s.byteLength;
      list.push(Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.byteLength));
    }
    this.segments = list.length === 0 ? NO_SEGMENTS : list;
    this.length = length;
  }

  /** @internal For codecs: wraps segments already known to be non-empty Buffers, without checks. */
  static of(segments: Buffer[], length: number): Frame {
    trusted = segments.length === 0 ? NO_SEGMENTS : segments;
    trustedLength = length;
    return new Frame(trusted);
  }

  /**
   * The payload as one contiguous Buffer. A one-segment frame returns its segment (no copy); a
   * multi-segment frame is concatenated once, on the first call, and the result is cached.
   */
  toBuffer(): Buffer {
    const segments = this.segments;
    if (segments.length === 1) return segments[0]!;
    if (segments.length === 0) return EMPTY;
    this.#joined ??= Buffer.concat(segments as Buffer[], this.length);
    return this.#joined;
  }

  /** `instanceof Frame` also holds for a frame made by the package's other (ESM/CJS) build. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return ordinaryHasInstance.call(Frame, value) || isFrame(value);
  }

  /** Iterate the segments in order. */
  [Symbol.iterator](): Iterator<Buffer> {
    return this.segments[Symbol.iterator]();
  }
}

Object.defineProperty(Frame.prototype, FRAME_BRAND, { value: true });
