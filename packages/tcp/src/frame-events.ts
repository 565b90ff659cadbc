import type { Buffer } from 'node:buffer';

/**
 * What a streaming codec (`lengthPrefixed({ frames: 'stream' })`, `frameEvents: true`) pushes from
 * `decode`: a small frame whole, or a large one as `start`, any number of `chunk`s, then `end`.
 * Pure data, so the codec stays sans-I/O; the connection turns a `start` … `end` run into a
 * `FrameStream` with backpressure.
 */
export type FrameEvent =
  /** A frame below `streamThreshold`, delivered whole. */
  | { readonly type: 'frame'; readonly payload: Buffer }
  /** A streamed frame begins; `length` is its payload size in bytes. */
  | { readonly type: 'start'; readonly length: number }
  /** The next bytes of the streamed frame's payload: a zero-copy view of a received chunk. */
  | { readonly type: 'chunk'; readonly data: Buffer }
  /** The streamed frame is complete. */
  | { readonly type: 'end' };

export const FRAME_END: FrameEvent = Object.freeze({ type: 'end' });
