import * as http2 from 'node:http2';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** Streams held before a flush is forced, so a stream flood cannot outrun the reset count. */
const MAX_PENDING = 512;

/** What a session does with the streams the batch hands back. */
export interface SessionStreams {
  /** A stream of this session ended with an error code (RST_STREAM either way). */
  reset(): void;
  /** The stream is still open at its first flush: watch it (idle timer, close) from now on. */
  track(stream: http2.ServerHttp2Stream): void;
}

/**
 * Defers per-stream bookkeeping past the life of most streams.
 *
 * A stream idle timer (`stream.setTimeout`) is a Node timer created per stream and re-armed on
 * every frame it reads or writes, and a 'close' listener per stream costs several emitter calls;
 * on small requests, answered within a few ms, that is a measurable share of the server's CPU.
 * Here a new stream costs a slot in an array. A flush (every `every` ms) counts the new streams
 * that already ended with an error code as resets and keeps the open ones for one more flush; those
 * still open then are handed to their session, which arms the timer and listener. A stream is
 * therefore reset for idleness at most two `every` intervals later than with a timer from its first
 * frame. Once `MAX_PENDING` new streams wait they are sorted at once, so at most that many streams
 * or `every` ms of resets go uncounted at any time.
 */
export class StreamBatch {
  readonly #every: number;
  #pending: (http2.ServerHttp2Stream | SessionStreams)[] = [];
  /** Streams that were open at one flush: tracked if still open at the next. */
  #aging: (http2.ServerHttp2Stream | SessionStreams)[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(every: number) {
    this.#every = every;
  }

  add(stream: http2.ServerHttp2Stream, owner: SessionStreams): void {
    // A stream reset in the same read as its HEADERS is already closed when it is announced.
    if (stream.closed) {
      if (stream.rstCode !== NGHTTP2_NO_ERROR) owner.reset();
      return;
    }
    const pending = this.#pending;
    pending.push(stream, owner);
    if (pending.length >= 2 * MAX_PENDING) this.#sort();
    else if (this.#timer === null) {
      this.#timer = setInterval(this.flush, this.#every);
      this.#timer.unref();
    }
  }

  /** Counts the resets among the new streams; the open ones wait one more tick in `#aging`. */
  #sort(): void {
    const pending = this.#pending;
    this.#pending = [];
    const aging = this.#aging;
    for (let i = 0; i < pending.length; i += 2) {
      const stream = pending[i] as http2.ServerHttp2Stream;
      const owner = pending[i + 1] as SessionStreams;
      if (!stream.closed) aging.push(stream, owner);
      else if (stream.rstCode !== NGHTTP2_NO_ERROR) owner.reset();
    }
  }

  readonly flush = (): void => {
    const aging = this.#aging;
    if (aging.length === 0 && this.#pending.length === 0) {
      if (this.#timer !== null) clearInterval(this.#timer);
      this.#timer = null;
      return;
    }
    this.#aging = [];
    for (let i = 0; i < aging.length; i += 2) {
      const stream = aging[i] as http2.ServerHttp2Stream;
      const owner = aging[i + 1] as SessionStreams;
      if (!stream.closed) owner.track(stream);
      else if (stream.rstCode !== NGHTTP2_NO_ERROR) owner.reset();
    }
    this.#sort();
  };

  /** Counts and hands over what waits, and stops the timer. */
  stop(): void {
    this.flush();
    this.flush();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
