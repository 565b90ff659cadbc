import type { Buffer } from 'node:buffer';
import type { Codec, CodecFactory } from './codec.js';
import { InvalidFrameError } from './errors.js';
import { LineCodec } from './line.js';
import { checkInt, type JsonCodecOptions } from './options.js';

function parseJson(text: string): unknown {
  return JSON.parse(text);
}

/**
 * Deepest nesting of arrays and objects in JSON `text` (brackets inside strings do not count).
 * Stops early once `limit` is passed, so a hostile line costs one scan at most.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
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

  constructor(options: JsonCodecOptions = {}) {
    const { maxDepth, ...lineOptions } = options;
    let parse = parseJson;
    if (maxDepth !== undefined) {
      const limit = checkInt('maxDepth', maxDepth, 1);
      parse = (text) => {
        if (jsonDepthExceeds(text, limit)) throw new Error(`nested deeper than maxDepth (${limit})`);
        return JSON.parse(text);
      };
    }
    this.#lines = new LineCodec<unknown>({ ...lineOptions, output: 'string' }, parse);
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
export function json(options: JsonCodecOptions = {}): CodecFactory<unknown, unknown> {
  new JsonLinesCodec(options);
  const frozen = { ...options };
  return () => new JsonLinesCodec(frozen);
}
