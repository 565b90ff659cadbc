import type { Buffer } from 'node:buffer';

/**
 * The contract between a byte stream and messages. A codec is sans-I/O: it never touches a socket,
 * so it can be tested (and fuzzed) with plain buffers, and users can write their own for any format.
 *
 * A codec instance holds the decoding state of ONE stream; servers and clients therefore take a
 * `CodecFactory` and create one codec per connection.
 *
 * @typeParam TDecoded - what `decode` produces (e.g. `Buffer` or `string`).
 * @typeParam TEncodable - what `encode` accepts (usually wider, e.g. `string | Uint8Array`).
 */
export interface Codec<TDecoded, TEncodable = TDecoded> {
  /**
   * Feed the next chunk of the stream and push every complete frame onto `out` (a caller-owned
   * array, so no array is allocated per chunk). Frames that lie entirely inside `chunk` may be
   * zero-copy views of it, so the caller must not reuse the chunk's memory.
   *
   * On malformed input, throw a `TcpError`. Frames decoded before the error are already on `out`.
   * If the error is `recoverable`, the codec must keep the unprocessed rest of the input and continue
   * from it on the next call (callers pass an empty chunk to resume).
   */
  decode(chunk: Uint8Array, out: TDecoded[]): void;

  /**
   * The stream ended (peer sent FIN). Push any final frame that the end of the stream completes
   * (e.g. a last line without a delimiter) or throw `TruncatedFrameError` for leftover bytes.
   * The codec is reset afterwards.
   */
  end(out: TDecoded[]): void;

  /**
   * Serialise one message. Returning several buffers (e.g. header and payload) lets the socket write
   * them with one `writev` instead of copying a large payload. Throw a `TcpError` for messages that
   * cannot be represented (too large, containing the delimiter, …).
   */
  encode(message: TEncodable): Uint8Array | readonly Uint8Array[];

  /**
   * Optional fast path for small messages: serialise `message` into `target` at `offset` and return
   * the number of bytes written, or -1 (writing nothing that matters) if it does not fit in
   * `target.length - offset` or is better sent by reference through `encode` (large payloads). Connections use it to pack a tick's small messages into one shared
   * buffer with no allocation per message; without it they call `encode`. Must validate exactly
   * like `encode`.
   */
  encodeInto?(message: TEncodable, target: Buffer, offset: number): number;

  /**
   * Optional: the header of a frame whose `payloadLength` payload bytes follow separately, for
   * `Connection.sendStream`. Must validate like `encode` (limits, field range).
   */
  encodeHeader?(payloadLength: number): Uint8Array;

  /** Drop all buffered input, as if the stream started over. */
  reset(): void;

  /**
   * True when `decode`/`end` push `FrameEvent`s (`frame`, or `start` / `chunk`… / `end` for a frame
   * too large to hold): the connection then delivers each streamed frame as a `FrameStream` with
   * backpressure on the socket, and small frames as their `Buffer`. `lengthPrefixed({ frames:
   * 'stream' })` is such a codec.
   */
  readonly frameEvents?: boolean;

  /** Bytes held for an incomplete frame; bounded by the codec's own limit. */
  readonly bufferedBytes: number;
}

/** Creates a fresh codec for each connection. */
export type CodecFactory<TDecoded, TEncodable = TDecoded> = () => Codec<TDecoded, TEncodable>;

/** Decoded message type of a codec factory. */
export type DecodedOf<F> = F extends CodecFactory<infer D, unknown> ? D : never;
/** Encodable message type of a codec factory. */
export type EncodableOf<F> = F extends CodecFactory<unknown, infer E> ? E : never;
