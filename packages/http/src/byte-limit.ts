import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through until more than `limit` have flowed, then fails the stream with the error
 * `tooLarge` builds. Shared by request bodies (413) and client responses (`maxBodySize`) so both
 * stop reading at the same byte, without buffering.
 */
export class ByteLimit extends Transform {
  #left: number;
  readonly #tooLarge: () => Error;
  constructor(limit: number, tooLarge: () => Error) {
    super();
    this.#left = limit;
    this.#tooLarge = tooLarge;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#left -= chunk.length;
    if (this.#left < 0) callback(this.#tooLarge());
    else callback(null, chunk);
  }
}
