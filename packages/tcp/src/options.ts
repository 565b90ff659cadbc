import type { ConnectionOptions as TlsConnectionOptions, TlsOptions } from 'node:tls';
import type { CodecFactory } from './codec.js';
import { InvalidOptionError } from './errors.js';

/** Options of `lengthPrefixed()` / `LengthPrefixedCodec`. Field names follow Netty's LengthFieldBasedFrameDecoder. */
export interface LengthPrefixedOptions {
  /**
   * Size of the length field in bytes, or `'varint'` for an unsigned LEB128 varint (protobuf style).
   * @default 4
   */
  lengthFieldLength?: 1 | 2 | 4 | 8 | 'varint';
  /**
   * Byte order of a fixed-size length field.
   * @default 'big'
   */
  byteOrder?: 'big' | 'little';
  /**
   * Bytes before the length field (e.g. a magic or type byte). The encoder writes zeros there.
   * @default 0
   */
  lengthFieldOffset?: number;
  /**
   * Added to the length field's value to get the number of bytes that follow the length field. Use
   * a negative value when the length counts the header too (e.g. `-4` for a 4-byte length that
   * includes itself).
   * @default 0
   */
  lengthAdjustment?: number;
  /**
   * Bytes removed from the start of each decoded frame. Defaults to the whole header
   * (`lengthFieldOffset` + length field), so decoded frames are just the payload.
   * @default lengthFieldOffset + size of the length field
   */
  initialBytesToStrip?: number;
  /**
   * Largest accepted frame, counting the header (as in Netty). A header that announces more fails
   * immediately, before any of the frame is buffered. The encoder enforces the same limit. With
   * `frames: 'stream'` a large frame is never held in memory, so the default is higher.
   * @default 16 MiB (16_777_216); 4 GiB (4_294_967_296) with `frames: 'stream'`
   */
  maxFrameLength?: number;
  /**
   * How decoded frames are delivered. `'buffer'`: one contiguous `Buffer` per frame; a frame that
   * spans socket reads is copied once to make it contiguous. `'segments'`: a `Frame` whose
   * `segments` are views into the received chunks, never a copy (`frame.toBuffer()` joins them on
   * demand). Use `'segments'` for large frames you forward or write to disk/another socket as is.
   * `'stream'`: a frame whose payload is at least `streamThreshold` bytes is delivered as a
   * `FrameStream` (a `Readable` of the payload, with backpressure on the socket) as soon as its
   * header arrives, so it never needs to fit in memory; smaller frames arrive as one `Buffer`.
   * @default 'buffer'
   */
  frames?: 'buffer' | 'segments' | 'stream';
  /**
   * With `frames: 'stream'`: payload size from which a frame is streamed instead of buffered. It is
   * also the most a smaller frame can make the codec buffer. `0` streams every frame.
   * @default 1 MiB (1_048_576)
   */
  streamThreshold?: number;
}

/** Options of `json()`: those of `lines()` except `output`, plus a nesting limit. */
export interface JsonCodecOptions extends Omit<LineCodecOptions, 'output'> {
  /**
   * Deepest nesting of arrays and objects accepted in one line; a deeper line is a recoverable
   * `ERR_INVALID_FRAME`, refused before `JSON.parse`. Set it when code walks messages recursively
   * (a 32,000-deep array fits in 64 KiB). Unset: no limit beyond `maxLineLength`.
   * @default undefined
   */
  maxDepth?: number;
}

/** Options of `lines()` / `LineCodec`. */
export interface LineCodecOptions {
  /**
   * Frame delimiter (string is UTF-8 encoded).
   * @default '\n'
   */
  delimiter?: string | Uint8Array;
  /**
   * Drop one `\r` right before the delimiter, so `\r\n` input (telnet, Windows, `nc -C`) yields clean lines.
   * @default true when the delimiter is '\n', otherwise false
   */
  stripCR?: boolean;
  /**
   * Delimiter written by `encode`. Set to `'\r\n'` for protocols that require CRLF.
   * @default the `delimiter`
   */
  encodeDelimiter?: string | Uint8Array;
  /**
   * Longest accepted line in bytes, delimiter excluded. Longer input fails fast with
   * `ERR_LINE_TOO_LONG` (a recoverable error: the codec skips to the next delimiter).
   * @default 65_536
   */
  maxLineLength?: number;
  /**
   * `'string'`: lines are decoded from UTF-8 to strings (bytes split across chunks are handled,
   * since only complete lines are decoded). `'buffer'`: lines are Buffers (zero-copy views when a
   * line arrives inside one chunk).
   * @default 'string'
   */
  output?: 'string' | 'buffer';
  /**
   * With `output: 'string'`, reject invalid UTF-8 with a recoverable `ERR_INVALID_FRAME` instead
   * of replacing it with U+FFFD.
   * @default false
   */
  fatalUtf8?: boolean;
  /**
   * At end of stream, emit bytes after the last delimiter as a final line (what `nc` sends when the
   * user types a line and then Ctrl-D).
   * @default true
   */
  emitTrailingLine?: boolean;
}

/** Options that every connection (server-side or client-side) understands. */
export interface ConnectionOptions<TDecoded = unknown, TEncodable = unknown> {
  /** Creates the codec of each connection, e.g. `lines()` or `lengthPrefixed()`. Required. */
  codec: CodecFactory<TDecoded, TEncodable>;
  /**
   * Close the connection with `ERR_IDLE_TIMEOUT` after this many ms without reads or writes. 0 disables.
   * @default 120_000 on servers, 0 on clients
   */
  idleTimeout?: number;
  /**
   * Disable Nagle's algorithm, so small messages leave immediately. (Writes made in the same tick
   * are still coalesced into one syscall.)
   * @default true
   */
  noDelay?: boolean;
  /**
   * TCP keep-alive probes, so a peer that vanished without a FIN is eventually detected.
   * @default true
   */
  keepAlive?: boolean;
  /**
   * Idle time before the first keep-alive probe, in ms.
   * @default 30_000
   */
  keepAliveInitialDelay?: number;
  /**
   * Outbound bytes (queued in this connection and in the socket) above which `send()` waits for
   * `drain` and `write()` returns false.
   * @default 65_536
   */
  highWaterMark?: number;
  /**
   * Hard cap on outbound bytes waiting to be written. A message that would exceed it is refused
   * with `ERR_PENDING_BYTES_EXCEEDED` (the connection stays open). A single message is always
   * accepted when nothing is pending.
   * @default 8 MiB (8_388_608)
   */
  maxPendingBytes?: number;
  /**
   * Decoded messages buffered for a slow `for await` consumer (or before any consumer is attached)
   * before the socket is paused. Pausing makes TCP flow control push back on the peer.
   * @default 1024
   */
  maxQueuedMessages?: number;
  /**
   * When false, the connection ends its own side as soon as the peer's FIN arrives (after
   * flushing pending writes). When true, it stays writable until you call `end()`.
   * @default false
   */
  allowHalfOpen?: boolean;
  /**
   * After `end()`, how long to wait for the peer to close before destroying the socket, in ms.
   * @default 5_000
   */
  closeTimeout?: number;
  /**
   * What a protocol error (bad frame from the peer) does after the `error` event: `'close'` ends
   * the connection gracefully (anything you wrote in the `error` handler is still delivered);
   * `'continue'` keeps it open when the error is recoverable (e.g. `ERR_LINE_TOO_LONG`).
   * @default 'close'
   */
  protocolErrors?: 'close' | 'continue';
}

/** Options of `createServer()`. */
export interface ServerOptions<TDecoded = unknown, TEncodable = unknown>
  extends ConnectionOptions<TDecoded, TEncodable> {
  /**
   * Connections above this count are refused (`rejected` event, then closed).
   * @default 10_000
   */
  maxConnections?: number;
  /** Serve TLS with these Node TLS options (`key`, `cert`, `ca`, `requestCert`, …). */
  tls?: TlsOptions;
  /**
   * TLS only: abort handshakes that take longer than this, in ms.
   * @default 10_000
   */
  handshakeTimeout?: number;
}

/** Options of `server.listen()`. */
export interface ListenOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
  /** Address to bind. @default all interfaces ('::' or '0.0.0.0') */
  host?: string;
  /** Unix socket path (instead of port/host). */
  path?: string;
  /** @default 511 */
  backlog?: number;
  /** @default false */
  ipv6Only?: boolean;
}

/** Options of `server.close()`. */
export interface CloseOptions {
  /**
   * Ms to let open connections finish by themselves. At the deadline the remaining ones are ended
   * gracefully (pending writes flushed, FIN sent) and destroyed after their `closeTimeout`.
   * @default 10_000
   */
  deadline?: number;
}

/** Options of `connect()`. */
export interface ConnectOptions<TDecoded = unknown, TEncodable = unknown>
  extends ConnectionOptions<TDecoded, TEncodable> {
  /** @default 'localhost' */
  host?: string;
  port?: number;
  /** Unix socket path (instead of host/port). */
  path?: string;
  /** Connect over TLS with these Node TLS options (`ca`, `servername`, `cert`, …). Verification stays on. */
  tls?: TlsConnectionOptions;
  /**
   * Abort if the TCP (and TLS) handshake is not done within this many ms.
   * @default 10_000
   */
  connectTimeout?: number;
  localAddress?: string;
  family?: 0 | 4 | 6;
  /** Abort connecting. */
  signal?: AbortSignal;
}

/** Options of `ReconnectingClient`. */
export interface ReconnectOptions<TDecoded = unknown, TEncodable = unknown>
  extends Omit<ConnectOptions<TDecoded, TEncodable>, 'signal'> {
  /**
   * Delay before the first retry, in ms.
   * @default 100
   */
  initialDelay?: number;
  /**
   * Upper bound of the retry delay, in ms.
   * @default 30_000
   */
  maxDelay?: number;
  /**
   * Multiplier applied to the delay after each failed attempt.
   * @default 2
   */
  factor?: number;
  /**
   * Fraction of the delay that is randomised: the actual delay is uniform in
   * `[delay * (1 - jitter), delay]`. 1 is "full jitter", 0 disables it.
   * @default 0.5
   */
  jitter?: number;
  /**
   * Consecutive failed attempts before giving up with `ERR_RECONNECT_FAILED`.
   * @default Infinity
   */
  maxAttempts?: number;
  /**
   * A connection that stayed open this long resets the backoff; shorter ones count as failures, so
   * a server that accepts and immediately drops us does not cause a tight loop.
   * @default 5_000
   */
  stableAfter?: number;
  /**
   * Messages sent while disconnected wait here (encoded) and are flushed in order on reconnect.
   * `false` disables it: such sends fail with `ERR_NOT_CONNECTED`.
   * @default { maxMessages: 1024, maxBytes: 1 MiB }
   */
  offlineQueue?: false | { maxMessages?: number; maxBytes?: number };
  /** Return false to stop reconnecting after this error (e.g. a TLS certificate error). */
  shouldReconnect?: (error: Error | undefined, attempt: number) => boolean;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers (internal).

export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `expected an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `expected a number in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function checkBool(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new InvalidOptionError(name, `expected a boolean, got ${String(value)}`);
  return value;
}

/** Fully resolved connection options (internal). */
export interface ResolvedConnectionOptions {
  idleTimeout: number;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveInitialDelay: number;
  highWaterMark: number;
  maxPendingBytes: number;
  maxQueuedMessages: number;
  allowHalfOpen: boolean;
  closeTimeout: number;
  protocolErrors: 'close' | 'continue';
}

const MAX_TIMER = 2_147_483_647;

export function resolveConnectionOptions(
  options: Partial<ConnectionOptions<unknown, unknown>>,
  defaultIdleTimeout: number,
): ResolvedConnectionOptions {
  if (typeof options.codec !== 'function') {
    throw new InvalidOptionError('codec', 'expected a codec factory such as lines() or lengthPrefixed()');
  }
  const protocolErrors = options.protocolErrors ?? 'close';
  if (protocolErrors !== 'close' && protocolErrors !== 'continue') {
    throw new InvalidOptionError('protocolErrors', "expected 'close' or 'continue'");
  }
  return {
    idleTimeout: checkInt('idleTimeout', options.idleTimeout ?? defaultIdleTimeout, 0, MAX_TIMER),
    noDelay: checkBool('noDelay', options.noDelay ?? true),
    keepAlive: checkBool('keepAlive', options.keepAlive ?? true),
    keepAliveInitialDelay: checkInt(
      'keepAliveInitialDelay',
      options.keepAliveInitialDelay ?? 30_000,
      0,
      MAX_TIMER,
    ),
    highWaterMark: checkInt('highWaterMark', options.highWaterMark ?? 65_536, 1),
    maxPendingBytes: checkInt('maxPendingBytes', options.maxPendingBytes ?? 8 * 1024 * 1024, 1),
    maxQueuedMessages: checkInt('maxQueuedMessages', options.maxQueuedMessages ?? 1024, 1),
    allowHalfOpen: checkBool('allowHalfOpen', options.allowHalfOpen ?? false),
    closeTimeout: checkInt('closeTimeout', options.closeTimeout ?? 5_000, 0, MAX_TIMER),
    protocolErrors,
  };
}

export { MAX_TIMER };
