import type { Buffer } from 'node:buffer';
import type { Codec, CodecFactory } from './codec.js';
import { InvalidFrameError } from './errors.js';
import { LineCodec } from './line.js';
import type { LineCodecOptions } from './options.js';

function parseJson(text: string): unknown {
  return JSON.parse(text);
}

function stringify(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new InvalidFrameError(`message is not JSON-serialisable: ${(cause as Error).message}`, { cause });
  }
  if (text === undefined)
    throw new InvalidFrameError('message is not JSON-serialisable (undefined or a function)');
  return text;
}

/**
 * Newline-delimited JSON (NDJSON / JSON Lines): one JSON value per line. `JSON.stringify` escapes
 * newlines inside strings, so any serialisable value fits on one line. A line that is not valid
 * JSON is a recoverable `ERR_INVALID_FRAME`; limits and delimiter options are those of `lines()`.
 */
export class JsonLinesCodec implements Codec<unknown, unknown> {
  readonly #lines: LineCodec<unknown>;

  constructor(options: Omit<LineCodecOptions, 'output'> = {}) {
    this.#lines = new LineCodec<unknown>({ ...options, output: 'string' }, parseJson);
  }

  get bufferedBytes(): number {
    return this.#lines.bufferedBytes;
  }

  decode(chunk: Uint8Array, out: unknown[]): void {
    this.#lines.decode(chunk, out);
  }

  end(out: unknown[]): void {
    this.#lines.end(out);
  }

  encode(value: unknown): Uint8Array | readonly Uint8Array[] {
    return this.#lines.encode(stringify(value));
  }

  encodeInto(value: unknown, target: Buffer, offset: number): number {
    return this.#lines.encodeInto(stringify(value), target, offset);
  }

  reset(): void {
    this.#lines.reset();
  }
}

/**
 * Codec factory for newline-delimited JSON. Messages are parsed values (`unknown`: validate them
 * before use); anything `JSON.stringify` accepts can be sent.
 *
 * @example
 * createServer({ codec: json({ maxLineLength: 16_384 }) }, (conn) => {
 *   conn.on('message', (msg) => conn.send({ ok: true, echo: msg }));
 * });
 */
export function json(options: Omit<LineCodecOptions, 'output'> = {}): CodecFactory<unknown, unknown> {
  new JsonLinesCodec(options);
  const frozen = { ...options };
  return () => new JsonLinesCodec(frozen);
}
