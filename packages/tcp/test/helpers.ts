import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import type { Codec } from '../src/codec.js';
import { TcpError } from '../src/errors.js';

export const EMPTY = Buffer.alloc(0);

/** Split `bytes` at the given cut points (any integers; reduced modulo the length). */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const points = [...new Set(cuts.map((c) => Math.abs(c) % bytes.length))]
    .filter((p) => p > 0)
    .sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(last, p));
    last = p;
  }
  chunks.push(bytes.subarray(last));
  return chunks;
}

/** Split into 1-byte chunks. */
export function bytewise(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

/** Arbitrary cut points: from none at all up to one per byte. */
export const cutsArb = fc.oneof(
  fc.array(fc.nat(), { maxLength: 8 }),
  fc.array(fc.nat(), { maxLength: 64 }),
  fc.constant([-1]), // marker handled by chunked(): every byte separately
);

export function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  return cuts.length === 1 && cuts[0] === -1 ? bytewise(bytes) : splitAt(bytes, cuts);
}

export function concatEncoded(parts: (Uint8Array | readonly Uint8Array[])[]): Buffer {
  const flat: Uint8Array[] = [];
  for (const p of parts) {
    if (p instanceof Uint8Array) flat.push(p);
    else flat.push(...p);
  }
  return Buffer.concat(flat);
}

export interface DriveResult<T> {
  frames: T[];
  errors: TcpError[];
  maxBuffered: number;
}

/**
 * Feed chunks like a connection does: on a recoverable error, resume with an empty chunk; on a
 * fatal one, stop. Any non-TcpError is rethrown (that would be a crash).
 */
export function drive<T>(codec: Codec<T, unknown>, chunks: Buffer[], withEnd = true): DriveResult<T> {
  const frames: T[] = [];
  const errors: TcpError[] = [];
  let maxBuffered = 0;
  const step = (fn: () => void): boolean => {
    for (;;) {
      try {
        fn();
        return true;
      } catch (error) {
        if (!(error instanceof TcpError)) throw error;
        errors.push(error);
        if (!error.recoverable) return false;
        fn = () => codec.decode(EMPTY, frames);
      }
    }
  };
  for (const chunk of chunks) {
    const ok = step(() => codec.decode(chunk, frames));
    maxBuffered = Math.max(maxBuffered, codec.bufferedBytes);
    if (!ok) return { frames, errors, maxBuffered };
  }
  if (withEnd) step(() => codec.end(frames));
  return { frames, errors, maxBuffered };
}

/** Resolve when `predicate` holds; fail after `timeout` ms. Polls, so it is immune to event ordering. */
export async function waitFor(predicate: () => boolean, timeout = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Race a promise against a timeout, so no test can hang on a missing event. */
export function within<T>(promise: Promise<T>, timeout = 10_000, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeout} ms waiting for ${what}`)),
        timeout,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
