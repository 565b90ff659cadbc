import { Buffer } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { asBuffer, BufferList } from './buffer-list.js';
import type { Codec, CodecFactory } from './codec.js';
import { InvalidFrameError, InvalidOptionError, LineTooLongError, TruncatedFrameError } from './errors.js';
import { checkBool, checkInt, type LineCodecOptions } from './options.js';

const CR = 0x0d;
const COPY_THRESHOLD = 2048;

function toBytes(name: string, value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  if (bytes.length === 0) throw new InvalidOptionError(name, 'must not be empty');
  return bytes;
}

/**
 * Delimiter-separated frames (newline by default). Lines are decoded only once complete, so UTF-8
 * characters split across TCP chunks come out intact without any streaming decoder state.
 *
 * Limits fail fast: once more than `maxLineLength` bytes arrive without a delimiter the codec throws
 * a recoverable `LineTooLongError`, drops what it buffered and skips input up to the next delimiter.
 */
export class LineCodec<T = string> implements Codec<T, string | Uint8Array> {
  readonly #delimiter: Buffer;
  /** The delimiter as a string when it is one, for a cheap `includes` check on string messages. */
  readonly #delimiterText: string | undefined;
  readonly #encodeDelimiter: Buffer;
  readonly #stripCR: boolean;
  readonly #max: number;
  readonly #text: boolean;
  readonly #fatal: TextDecoder | undefined;
  readonly #emitTrailing: boolean;
  readonly #parse: ((text: string) => T) | undefined;

  readonly #list = new BufferList();
  /** Bytes of `#list` already known not to start a delimiter. */
  #scanned = 0;
  /** Skipping the rest of an over-long line. */
  #discarding = false;

  /**
   * @param parse - optional: turn each decoded text line into a value (e.g. `JSON.parse`); a throw
   *   becomes a recoverable `ERR_INVALID_FRAME`. Implies text output.
   */
  constructor(options: LineCodecOptions = {}, parse?: (text: string) => T) {
    this.#delimiter = toBytes('delimiter', options.delimiter ?? '\n');
    this.#delimiterText =
      typeof (options.delimiter ?? '\n') === 'string' ? this.#delimiter.toString() : undefined;
    this.#encodeDelimiter = toBytes('encodeDelimiter', options.encodeDelimiter ?? this.#delimiter);
    const isNewline = this.#delimiter.length === 1 && this.#delimiter[0] === 0x0a;
    this.#stripCR = checkBool('stripCR', options.stripCR ?? isNewline);
    this.#max = checkInt('maxLineLength', options.maxLineLength ?? 65_536, 0);
    const output = options.output ?? 'string';
    if (output !== 'string' && output !== 'buffer')
      throw new InvalidOptionError('output', "expected 'string' or 'buffer'");
    this.#parse = parse;
    this.#text = output === 'string' || parse !== undefined;
    this.#fatal = checkBool('fatalUtf8', options.fatalUtf8 ?? false)
      ? new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
      : undefined;
    this.#emitTrailing = checkBool('emitTrailingLine', options.emitTrailingLine ?? true);
  }

  get bufferedBytes(): number {
    return this.#list.length;
  }

  reset(): void {
    this.#list.clear();
    this.#scanned = 0;
    this.#discarding = false;
  }

  decode(chunk: Uint8Array, out: T[]): void {
    const list = this.#list;
    if (list.length === 0 && !this.#discarding && this.#delimiter.length === 1) {
      this.#decodeChunk(asBuffer(chunk), out);
      return;
    }
    list.push(chunk);
    const dlen = this.#delimiter.length;
    for (;;) {
      const at = this.#find();
      if (at === -1) {
        this.#scanned = Math.max(0, list.length - dlen + 1);
        this.#checkOverflow();
        return;
      }
      this.#scanned = 0;
      if (this.#discarding) {
        list.skip(at + dlen);
        this.#discarding = false;
        continue;
      }
      let lineLength = at;
      if (this.#stripCR && at > 0 && list.byteAt(at - 1) === CR) lineLength--;
      if (lineLength > this.#max) {
        list.skip(at + dlen);
        throw new LineTooLongError(this.#max, true);
      }
      const line = list.take(lineLength);
      list.skip(at - lineLength + dlen);
      out.push(this.#convert(line, 0, lineLength));
      if (list.length === 0) return;
      if (dlen === 1 && list.chunkCount === 1) {
        // The line that spanned chunks is done: back to the fast path for the rest.
        this.#decodeChunk(list.takeAll(), out);
        return;
      }
    }
  }

  /** Single-byte delimiter, nothing buffered: lines are views of (or strings from) the chunk. */
  #decodeChunk(buf: Buffer, out: T[]): void {
    const byte = this.#delimiter[0]!;
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      const at = buf.indexOf(byte, pos);
      if (at === -1) break;
      let lineEnd = at;
      if (this.#stripCR && lineEnd > pos && buf[lineEnd - 1] === CR) lineEnd--;
      if (lineEnd - pos > this.#max) {
        // Keep the unprocessed rest so the caller can resume after handling the error.
        if (at + 1 < end) this.#list.push(buf.subarray(at + 1));
        throw new LineTooLongError(this.#max, true);
      }
      let line: T;
      try {
        line = this.#convert(buf, pos, lineEnd);
      } catch (error) {
        // Same contract as above: the rest of the chunk waits for the caller to resume.
        if (at + 1 < end) this.#list.push(buf.subarray(at + 1));
        throw error;
      }
      out.push(line);
      pos = at + 1;
    }
    if (pos < end) {
      this.#list.push(pos === 0 ? buf : buf.subarray(pos));
      this.#scanned = this.#list.length;
      this.#checkOverflow();
    }
  }

  /** Called with no delimiter in the buffer: fail fast instead of buffering an endless line. */
  #checkOverflow(): void {
    const list = this.#list;
    // Bytes that might still turn out to be a CR or the start of the delimiter do not count yet.
    const slack = this.#delimiter.length - 1 + (this.#stripCR ? 1 : 0);
    if (this.#discarding) {
      if (list.length > slack) list.skip(list.length - slack);
      this.#scanned = 0;
      return;
    }
    if (list.length - slack > this.#max) {
      list.skip(list.length - slack);
      this.#scanned = 0;
      this.#discarding = true;
      throw new LineTooLongError(this.#max, true);
    }
  }

  #find(): number {
    const list = this.#list;
    const delimiter = this.#delimiter;
    const first = delimiter[0]!;
    let from = this.#scanned;
    for (;;) {
      const at = list.indexOfByte(first, from);
      if (at === -1 || delimiter.length === 1) return at;
      if (at + delimiter.length > list.length) return -1;
      let k = 1;
      while (k < delimiter.length && list.byteAt(at + k) === delimiter[k]) k++;
      if (k === delimiter.length) return at;
      from = at + 1;
    }
  }

  #convert(buf: Buffer, start: number, end: number): T {
    if (!this.#text) return buf.subarray(start, end) as T;
    let text: string;
    if (this.#fatal === undefined) {
      text = buf.toString('utf8', start, end);
    } else {
      try {
        text = this.#fatal.decode(buf.subarray(start, end));
      } catch (cause) {
        throw new InvalidFrameError('line is not valid UTF-8', { cause, recoverable: true });
      }
    }
    if (this.#parse === undefined) return text as T;
    try {
      return this.#parse(text);
    } catch (cause) {
      throw new InvalidFrameError(`line could not be parsed: ${(cause as Error).message}`, {
        cause,
        recoverable: true,
      });
    }
  }

  end(out: T[]): void {
    const list = this.#list;
    const discarding = this.#discarding;
    if (list.length === 0 || discarding) {
      this.reset();
      return;
    }
    if (!this.#emitTrailing) {
      const left = list.length;
      this.reset();
      throw new TruncatedFrameError(left);
    }
    let length = list.length;
    if (this.#stripCR && list.byteAt(length - 1) === CR) length--;
    if (length > this.#max) {
      this.reset();
      throw new LineTooLongError(this.#max, false);
    }
    const line = list.take(length);
    this.reset();
    out.push(this.#convert(line, 0, length));
  }

  encodeInto(line: string | Uint8Array, target: Buffer, offset: number): number {
    if (typeof line !== 'string' && line.byteLength >= COPY_THRESHOLD) return -1; // zero-copy via encode()
    const tail = this.#encodeDelimiter;
    const length = typeof line === 'string' ? this.#checkText(line) : this.#checkBytes(asBuffer(line));
    const total = length + tail.length;
    if (offset + total > target.length) return -1;
    if (typeof line === 'string') target.write(line, offset, 'utf8');
    else target.set(line, offset);
    tail.copy(target, offset + length);
    return total;
  }

  encode(line: string | Uint8Array): Uint8Array | readonly Uint8Array[] {
    const tail = this.#encodeDelimiter;
    if (typeof line === 'string') {
      const length = this.#checkText(line);
      const frame = Buffer.allocUnsafe(length + tail.length);
      frame.write(line, 0, 'utf8');
      tail.copy(frame, length);
      return frame;
    }
    const bytes = asBuffer(line);
    this.#checkBytes(bytes);
    if (bytes.length >= COPY_THRESHOLD) return [bytes, tail];
    const frame = Buffer.allocUnsafe(bytes.length + tail.length);
    bytes.copy(frame, 0);
    tail.copy(frame, bytes.length);
    return frame;
  }

  /** Validates a text line for encoding; returns its UTF-8 length. */
  #checkText(line: string): number {
    const hasDelimiter =
      this.#delimiterText !== undefined
        ? line.includes(this.#delimiterText)
        : Buffer.from(line).includes(this.#delimiter);
    if (hasDelimiter) throw new InvalidFrameError('line contains the delimiter');
    if (this.#stripCR && line.charCodeAt(line.length - 1) === CR) {
      throw new InvalidFrameError('line ends with \\r, which the receiving side would strip');
    }
    const length = Buffer.byteLength(line);
    if (length > this.#max) throw new LineTooLongError(this.#max, false);
    return length;
  }

  #checkBytes(bytes: Buffer): number {
    if (bytes.includes(this.#delimiter)) throw new InvalidFrameError('line contains the delimiter');
    if (this.#stripCR && bytes[bytes.length - 1] === CR) {
      throw new InvalidFrameError('line ends with \\r, which the receiving side would strip');
    }
    if (bytes.length > this.#max) throw new LineTooLongError(this.#max, false);
    return bytes.length;
  }
}

/** Options of `lines()` that select Buffer output. */
export type LineBufferOptions = LineCodecOptions & { output: 'buffer' };

/**
 * Codec factory for delimiter-separated lines. By default lines are UTF-8 strings split on `\n`
 * with a trailing `\r` removed, which is what `nc`, telnet and most text protocols send.
 *
 * @example
 * createServer({ codec: lines({ maxLineLength: 1024 }) }, (conn) => {
 *   conn.on('message', (line) => conn.send(`you said: ${line}`));
 * });
 */
export function lines(options: LineBufferOptions): CodecFactory<Buffer, string | Uint8Array>;
export function lines(
  options?: LineCodecOptions & { output?: 'string' },
): CodecFactory<string, string | Uint8Array>;
export function lines(options: LineCodecOptions = {}): CodecFactory<string | Buffer, string | Uint8Array> {
  new LineCodec(options);
  const frozen = { ...options };
  return () => new LineCodec<string | Buffer>(frozen);
}
