import { brandBaseClass } from './error-brand.js';

/**
 * Every error this package creates is a `TcpError` with a stable `code`, so callers can branch on
 * `err.code` instead of parsing messages. Errors coming from the OS (ECONNREFUSED, ECONNRESET, …) are
 * passed through untouched as Node's own `Error` objects with their own `code`.
 */
export class TcpError extends Error {
  readonly code: string;
  /**
   * True when the codec has already resynchronised past the bad input, so the connection can keep
   * going if the application wants it to (see the `protocolErrors` option).
   */
  readonly recoverable: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; recoverable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.recoverable = options?.recoverable ?? false;
  }
}
brandBaseClass(TcpError);

/** A length-prefixed frame (or an encoded one) is larger than `maxFrameLength`. */
export class FrameTooLargeError extends TcpError {
  readonly length: number;
  readonly maxFrameLength: number;
  constructor(length: number, maxFrameLength: number) {
    super(
      'ERR_FRAME_TOO_LARGE',
      `frame of ${length === Number.POSITIVE_INFINITY ? 'unbounded' : length} bytes exceeds maxFrameLength ${maxFrameLength}`,
    );
    this.length = length;
    this.maxFrameLength = maxFrameLength;
  }
}

/** A line (without its delimiter) is longer than `maxLineLength` bytes. */
export class LineTooLongError extends TcpError {
  readonly maxLineLength: number;
  constructor(maxLineLength: number, recoverable: boolean) {
    super('ERR_LINE_TOO_LONG', `line exceeds maxLineLength of ${maxLineLength} bytes`, { recoverable });
    this.maxLineLength = maxLineLength;
  }
}

/** Malformed input or output: a corrupt length field, a line that contains its delimiter, bad UTF-8… */
export class InvalidFrameError extends TcpError {
  constructor(message: string, options?: { cause?: unknown; recoverable?: boolean }) {
    super('ERR_INVALID_FRAME', message, options);
  }
}

/** The peer closed its side in the middle of a frame. */
export class TruncatedFrameError extends TcpError {
  readonly bufferedBytes: number;
  constructor(bufferedBytes: number) {
    super('ERR_TRUNCATED_FRAME', `stream ended with ${bufferedBytes} bytes of an incomplete frame`);
    this.bufferedBytes = bufferedBytes;
  }
}

/**
 * A streamed frame (`frames: 'stream'`) could not be completed because the connection failed or was
 * destroyed in the middle of it; `cause` is why. Emitted on the `FrameStream` only.
 */
export class FrameAbortedError extends TcpError {
  /** Payload bytes of the frame that never arrived. */
  readonly missingBytes: number;
  constructor(missingBytes: number, cause?: unknown) {
    super('ERR_FRAME_ABORTED', `connection closed with ${missingBytes} bytes of a streamed frame missing`, {
      cause,
    });
    this.missingBytes = missingBytes;
  }
}

/** `send`/`write` (or a second `sendStream`) while `sendStream` is writing a frame's payload. */
export class SendStreamActiveError extends TcpError {
  constructor() {
    super('ERR_SEND_STREAM_ACTIVE', 'a frame is being streamed out with sendStream(); wait for it to finish');
  }
}

/** Nothing was read or written for `idleTimeout` ms. */
export class IdleTimeoutError extends TcpError {
  readonly timeout: number;
  constructor(timeout: number) {
    super('ERR_IDLE_TIMEOUT', `connection idle for ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** `connect()` (TCP handshake plus TLS handshake if any) did not finish within `connectTimeout`. */
export class ConnectTimeoutError extends TcpError {
  readonly timeout: number;
  constructor(timeout: number) {
    super('ERR_CONNECT_TIMEOUT', `connection not established within ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** Accepting another message would push the outbound buffer beyond `maxPendingBytes`. */
export class PendingBytesExceededError extends TcpError {
  readonly pendingBytes: number;
  readonly maxPendingBytes: number;
  constructor(pendingBytes: number, maxPendingBytes: number) {
    super(
      'ERR_PENDING_BYTES_EXCEEDED',
      `${pendingBytes} bytes already pending; the message would exceed maxPendingBytes ${maxPendingBytes}`,
    );
    this.pendingBytes = pendingBytes;
    this.maxPendingBytes = maxPendingBytes;
  }
}

/** Sending on a connection that is ending or closed. */
export class ConnectionClosedError extends TcpError {
  constructor(message = 'connection is closed') {
    super('ERR_CONNECTION_CLOSED', message);
  }
}

/** The server refused a connection because `maxConnections` were already open. */
export class TooManyConnectionsError extends TcpError {
  readonly maxConnections: number;
  constructor(maxConnections: number) {
    super('ERR_TOO_MANY_CONNECTIONS', `server already has maxConnections (${maxConnections}) connections`);
    this.maxConnections = maxConnections;
  }
}

/** `listen()` on a server that is closing or closed, or that is already listening. */
export class ServerStateError extends TcpError {
  constructor(message: string) {
    super('ERR_SERVER_STATE', message);
  }
}

/** The reconnecting client's offline queue is full (`offlineQueue.maxMessages` / `maxBytes`). */
export class QueueFullError extends TcpError {
  constructor(message: string) {
    super('ERR_QUEUE_FULL', message);
  }
}

/** The reconnecting client is not connected and has no offline queue. */
export class NotConnectedError extends TcpError {
  constructor() {
    super('ERR_NOT_CONNECTED', 'not connected and the offline queue is disabled');
  }
}

/** The reconnecting client gave up after `maxAttempts` failed attempts (the last failure is `cause`). */
export class ReconnectFailedError extends TcpError {
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super('ERR_RECONNECT_FAILED', `gave up after ${attempts} failed connection attempts`, { cause });
    this.attempts = attempts;
  }
}

/** An option is missing, of the wrong type or out of range. Thrown synchronously at construction. */
export class InvalidOptionError extends TcpError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', `option ${option}: ${message}`);
    this.option = option;
  }
}

/** A second `for await` loop over a connection (or client) that is already being iterated. */
export class IteratorActiveError extends TcpError {
  constructor() {
    super('ERR_ITERATOR_ACTIVE', 'already being iterated; only one for-await loop at a time');
  }
}

/** The operation was aborted through an `AbortSignal`. */
export class AbortError extends TcpError {
  constructor(cause?: unknown) {
    super('ERR_ABORTED', 'the operation was aborted', { cause });
  }
}
