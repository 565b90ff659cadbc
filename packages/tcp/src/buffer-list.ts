import { Buffer } from 'node:buffer';

const EMPTY = Buffer.alloc(0);

/** Views any Uint8Array as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A read cursor over a queue of chunks. Bytes are copied exactly once, and only when a frame spans
 * several chunks; a frame inside the first chunk comes back as a zero-copy view. This replaces the
 * usual `Buffer.concat(leftover, chunk)` per chunk, which is quadratic for large frames arriving in
 * small pieces.
 */
export class BufferList {
  #chunks: Buffer[] = [];
  /** Index of the first live chunk in `#chunks` (avoids O(n) `shift`). */
  #head = 0;
  /** Read offset inside the first live chunk. */
  #offset = 0;
  #length = 0;

  /** Total unread bytes. */
  get length(): number {
    return this.#length;
  }

  /** Number of chunks holding unread bytes. */
  get chunkCount(): number {
    return this.#chunks.length - this.#head;
  }

  /** Appends a chunk without copying it; empty chunks are ignored. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(asBuffer(chunk));
    this.#length += chunk.byteLength;
  }

  /** Drops every unread byte. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#length = 0;
  }

  /** The byte at `index` (relative to the read position). Caller guarantees `index < length`. */
  byteAt(index: number): number {
    let i = this.#head;
    let pos = index + this.#offset;
    for (;;) {
      const chunk = this.#chunks[i]!;
      if (pos < chunk.length) return chunk[pos]!;
      pos -= chunk.length;
      i++;
    }
  }

  /**
   * Unsigned integer of `size` bytes at `index`. Values above 2^53 lose precision, which is fine for
   * length fields: anything that large is rejected by the frame limit anyway.
   */
  readUInt(index: number, size: number, littleEndian: boolean): number {
    const first = this.#chunks[this.#head];
    const at = this.#offset + index;
    if (first !== undefined && at + size <= first.length) return readUIntFrom(first, at, size, littleEndian);
    let value = 0;
    if (littleEndian) {
      for (let k = size - 1; k >= 0; k--) value = value * 256 + this.byteAt(index + k);
    } else {
      for (let k = 0; k < size; k++) value = value * 256 + this.byteAt(index + k);
    }
    return value;
  }

  /** Drop `n` bytes from the front. */
  skip(n: number): void {
    if (n >= this.#length) {
      this.clear();
      return;
    }
    this.#length -= n;
    let remaining = n + this.#offset;
    for (;;) {
      const chunk = this.#chunks[this.#head]!;
      if (remaining < chunk.length) {
        this.#offset = remaining;
        break;
      }
      remaining -= chunk.length;
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
    }
    this.#compact();
  }

  /** Remove and return the first `n` bytes (`n <= length`): a view when possible, else one copy. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#chunks[this.#head]!;
    const start = this.#offset;
    if (start + n <= first.length) {
      const view = first.subarray(start, start + n);
      this.skip(n);
      return view;
    }
    const out = allocFrame(n);
    let written = 0;
    let i = this.#head;
    let from = start;
    while (written < n) {
      const chunk = this.#chunks[i]!;
      const count = Math.min(chunk.length - from, n - written);
      chunk.copy(out, written, from, from + count);
      written += count;
      from = 0;
      i++;
    }
    this.skip(n);
    return out;
  }

  /**
   * Remove the first `n` bytes (`n <= length`) as views of the queued chunks, appended to `out`:
   * never a copy, one view per chunk touched, no empty views.
   */
  takeSegments(n: number, out: Buffer[]): void {
    let left = n;
    let i = this.#head;
    let from = this.#offset;
    while (left > 0) {
      const chunk = this.#chunks[i]!;
      const count = Math.min(chunk.length - from, left);
      out.push(from === 0 && count === chunk.length ? chunk : chunk.subarray(from, from + count));
      left -= count;
      from = 0;
      i++;
    }
    this.skip(n);
  }

  /** Remove and return everything. */
  takeAll(): Buffer {
    return this.take(this.#length);
  }

  /**
   * Position of the first `byte` at or after `from`, or -1. Searches each chunk with the native
   * `indexOf`, so scanning stays fast for long lines.
   */
  indexOfByte(byte: number, from: number): number {
    let base = 0;
    let skipBytes = from + this.#offset;
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      if (skipBytes < chunk.length) {
        const hit = chunk.indexOf(byte, skipBytes);
        if (hit !== -1) return base + hit - this.#offset;
        skipBytes = 0;
      } else {
        skipBytes -= chunk.length;
      }
      base += chunk.length;
    }
    return -1;
  }

  #compact(): void {
    // Reclaim the consumed prefix once it dominates, keeping amortised O(1) per chunk.
    if (this.#head > 32 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}

export function readUIntFrom(buf: Buffer, at: number, size: number, littleEndian: boolean): number {
  switch (size) {
    case 1:
      return buf[at]!;
    case 2:
      return littleEndian ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
    case 4:
      return littleEndian ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
    case 8:
      return littleEndian
        ? buf.readUInt32LE(at + 4) * 0x1_0000_0000 + buf.readUInt32LE(at)
        : buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
    default: {
      let value = 0;
      if (littleEndian) for (let k = size - 1; k >= 0; k--) value = value * 256 + buf[at + k]!;
      else for (let k = 0; k < size; k++) value = value * 256 + buf[at + k]!;
      return value;
    }
  }
}

/**
 * Frames reassembled from several chunks are carved out of shared slabs, like Node's own pool
 * does for small buffers: one allocation per slab instead of one per frame keeps the GC quiet at
 * high throughput. Only mid-sized frames qualify, so a retained frame pins at most SLAB_SIZE.
 */
const SLAB_SIZE = 512 * 1024;
const SLAB_MIN = 4 * 1024;
const SLAB_MAX = SLAB_SIZE / 4;
let slab: Buffer | undefined;
let slabOffset = 0;

function allocFrame(n: number): Buffer {
  if (n < SLAB_MIN || n > SLAB_MAX) return Buffer.allocUnsafe(n);
  if (slab === undefined || SLAB_SIZE - slabOffset < n) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + n);
  slabOffset += (n + 7) & ~7; // keep the next frame 8-byte aligned
  return out;
}
