import type { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { FrameAbortedError, TruncatedFrameError } from './errors.js';
import type { FrameEvent } from './frame-events.js';

/** Bytes a `FrameStream` buffers before the socket is paused (plus at most one socket read). */
const STREAM_HIGH_WATER_MARK = 64 * 1024;
const noop = (): void => {};
/** Both builds (ESM, CommonJS) mark FrameStream with this, so `instanceof` works across them. */
const FRAME_STREAM_BRAND = Symbol.for('@net/tcp:frame-stream');
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * One large frame delivered while it arrives (`lengthPrefixed({ frames: 'stream' })`): a
 * `Readable` of the payload. While it is not read, the socket is paused, so a frame of any length
 * costs at most about 64 KiB plus one socket read of memory.
 *
 * Read it to the end (`for await`, `pipeline`, `.pipe`) or `destroy()` it: the connection's next
 * message comes after this frame on the wire, so it waits until the frame is consumed. A destroyed
 * stream's remaining bytes are read and dropped; the connection goes on.
 *
 * If the connection ends or fails mid-frame the stream is destroyed with `ERR_TRUNCATED_FRAME`
 * (peer sent FIN) or `ERR_FRAME_ABORTED` (socket error, destroy, protocol error; `cause` says
 * which). The error is also in `stream.errored`; it never goes unhandled.
 */
export class FrameStream extends Readable {
  /** Payload length announced by the frame's header. */
  readonly length: number;
  #received = 0;
  readonly #pull: () => void;

  /** @internal Created by the connection. */
  constructor(length: number, pull: () => void, dropped: () => void) {
    super({ highWaterMark: STREAM_HIGH_WATER_MARK });
    this.length = length;
    this.#pull = pull;
    // An abort must not crash a process that only listens to 'data'; for-await and pipeline still
    // see the error.
    this.on('error', noop);
    this.once('close', dropped);
  }

  /** Payload bytes received so far (queued in the stream or already read). */
  get receivedBytes(): number {
    return this.#received;
  }

  /** Called by `Readable` when the consumer wants more data: resumes the socket if it was paused for this stream. */
  override _read(): void {
    this.#pull();
  }

  /** @internal */
  feed(data: Buffer): boolean {
    this.#received += data.length;
    return this.push(data);
  }

  /** `instanceof FrameStream` also holds for a stream made by the package's other (ESM/CJS) build. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      ordinaryHasInstance.call(FrameStream, value) ||
      (typeof value === 'object' &&
        value !== null &&
        (value as { [FRAME_STREAM_BRAND]?: unknown })[FRAME_STREAM_BRAND] === true)
    );
  }
}

Object.defineProperty(FrameStream.prototype, FRAME_STREAM_BRAND, { value: true });

/**
 * Connection-side half of streaming: turns a codec's `FrameEvent`s into messages (`Buffer` for a
 * whole frame, a `FrameStream` for a streamed one) and asks for the socket to pause while the
 * current stream is full.
 */
export class FrameStreamAssembler {
  #current: FrameStream | undefined;
  #paused = false;
  readonly #onPause: (paused: boolean) => void;

  constructor(setPaused: (paused: boolean) => void) {
    this.#onPause = setPaused;
  }

  /** Tells the connection only on a change: `_read` runs once per read of the consumer. */
  #setPaused(paused: boolean): void {
    if (this.#paused === paused) return;
    this.#paused = paused;
    this.#onPause(paused);
  }

  /** Appends the messages that `events` make to `out` and empties `events`. */
  translate(events: FrameEvent[], out: unknown[]): void {
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      switch (event.type) {
        case 'frame':
          out.push(event.payload);
          break;
        case 'start': {
          const stream: FrameStream = new FrameStream(
            event.length,
            () => {
              if (this.#current === stream) this.#setPaused(false);
            },
            () => {
              // Destroyed by its reader before the end: drop the rest, keep the socket flowing.
              if (this.#current === stream) this.#setPaused(false);
            },
          );
          this.#current = stream;
          out.push(stream);
          break;
        }
        case 'chunk': {
          const stream = this.#current;
          if (stream !== undefined && !stream.destroyed && !stream.feed(event.data)) this.#setPaused(true);
          break;
        }
        case 'end': {
          const stream = this.#current;
          this.#current = undefined;
          if (stream !== undefined && !stream.destroyed) stream.push(null);
          this.#setPaused(false);
          break;
        }
      }
    }
    events.length = 0;
  }

  /** The input ended or failed: a frame still streaming can never complete. */
  abort(reason: Error | undefined): void {
    const stream = this.#current;
    this.#current = undefined;
    if (stream === undefined || stream.destroyed) return;
    stream.destroy(
      reason instanceof TruncatedFrameError
        ? reason
        : new FrameAbortedError(stream.length - stream.receivedBytes, reason),
    );
  }
}
