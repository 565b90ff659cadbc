import { brandBaseClass } from './error-brand.js';

/**
 * Every error this package produces is an instance of {@link WebSocketError} with a stable
 * `code` string. Errors that fail a connection also carry the close code sent to the peer.
 */
export class WebSocketError extends Error {
  readonly code: string;
  /** The close status code sent to the peer because of this error, if any. */
  readonly closeCode: number | undefined;

  constructor(code: string, message: string, closeCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.closeCode = closeCode;
  }
}
brandBaseClass(WebSocketError);

/** A frame broke RFC 6455 framing rules (reserved bits/opcodes, bad control frames, masking...). */
export class ProtocolError extends WebSocketError {
  constructor(message: string) {
    super('ERR_WS_PROTOCOL', message, 1002);
  }
}

/** A close frame carried a status code that may not appear on the wire. */
export class InvalidCloseCodeError extends WebSocketError {
  readonly receivedCode: number;
  constructor(received: number) {
    super('ERR_WS_INVALID_CLOSE_CODE', `Invalid close status code ${received}`, 1002);
    this.receivedCode = received;
  }
}

/** A text message or a close reason was not valid UTF-8. */
export class InvalidUtf8Error extends WebSocketError {
  constructor(where: 'text message' | 'close reason') {
    super('ERR_WS_INVALID_UTF8', `Invalid UTF-8 in ${where}`, 1007);
  }
}

/** A message (after decompression, if any) exceeded `maxPayload`. */
export class MessageTooBigError extends WebSocketError {
  readonly limit: number;
  constructor(limit: number) {
    super('ERR_WS_MESSAGE_TOO_BIG', `Message exceeds maxPayload of ${limit} bytes`, 1009);
    this.limit = limit;
  }
}

/** permessage-deflate data could not be decompressed. */
export class DecompressionError extends WebSocketError {
  constructor(cause: unknown) {
    super('ERR_WS_DECOMPRESSION', 'Invalid permessage-deflate data', 1007, { cause });
  }
}

/** The opening handshake failed (client: bad response; server: used for rejected requests). */
export class HandshakeError extends WebSocketError {
  /** HTTP status code of the response, when one was received or sent. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super('ERR_WS_HANDSHAKE', message, undefined);
    this.status = status;
  }
}

/** The opening handshake did not complete within `timeout` / `handshakeTimeout`. */
export class HandshakeTimeoutError extends WebSocketError {
  constructor(ms: number) {
    super('ERR_WS_HANDSHAKE_TIMEOUT', `Opening handshake timed out after ${ms} ms`);
  }
}

/** The server redirected and `maxRedirects` was exhausted (0 by default). */
export class TooManyRedirectsError extends WebSocketError {
  readonly location: string | undefined;
  constructor(max: number, location: string | undefined) {
    super('ERR_WS_TOO_MANY_REDIRECTS', `Server redirected more than maxRedirects (${max}) times`);
    this.location = location;
  }
}

/** The peer did not complete the closing handshake within `closeTimeout`. */
export class CloseTimeoutError extends WebSocketError {
  constructor(ms: number) {
    super('ERR_WS_CLOSE_TIMEOUT', `Closing handshake timed out after ${ms} ms`);
  }
}

/** The peer did not answer a heartbeat ping before the next one was due. */
export class HeartbeatTimeoutError extends WebSocketError {
  constructor(ms: number) {
    super('ERR_WS_HEARTBEAT_TIMEOUT', `No pong received within ${ms} ms`);
  }
}

/** Outbound data exceeded `maxBufferedAmount`: the peer reads too slowly. */
export class SlowConsumerError extends WebSocketError {
  constructor(limit: number) {
    super('ERR_WS_SLOW_CONSUMER', `Outbound buffer exceeded maxBufferedAmount of ${limit} bytes`, 1008);
  }
}

/** Sending was attempted after the closing handshake started or the connection ended. */
export class ConnectionClosedError extends WebSocketError {
  constructor(message = 'WebSocket is not open') {
    super('ERR_WS_CLOSED', message);
  }
}

/** The underlying socket failed (reset, TLS failure, ...). The original error is the `cause`. */
export class SocketError extends WebSocketError {
  constructor(cause: unknown) {
    super('ERR_WS_SOCKET', `Socket error: ${cause instanceof Error ? cause.message : String(cause)}`, 1006, {
      cause,
    });
  }
}

/** An argument or option had an invalid value (bad URL, close code, reason too long, ...). */
export class InvalidArgumentError extends WebSocketError {
  constructor(message: string) {
    super('ERR_WS_INVALID_ARGUMENT', message);
  }
}

/** The `signal` passed to `connect()` / `new WebSocket()` was aborted before the connection opened. */
export class AbortedError extends WebSocketError {
  constructor(reason: unknown) {
    super('ERR_WS_ABORTED', 'The opening handshake was aborted', undefined, { cause: reason });
  }
}

/**
 * The HTTP proxy could not open a tunnel: it refused the CONNECT (`status` holds its answer, e.g.
 * 403 or 407), answered something that is not HTTP, or could not be reached (`cause`).
 */
export class ProxyError extends WebSocketError {
  /** The proxy's HTTP status, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, status?: number, cause?: unknown) {
    super('ERR_WS_PROXY', message, undefined, cause === undefined ? undefined : { cause });
    this.status = status;
  }
}

/**
 * `connect(url, { http2: true })` could not open the WebSocket over HTTP/2: the server did not
 * select `h2` in ALPN, or its SETTINGS do not enable extended CONNECT (RFC 8441
 * `SETTINGS_ENABLE_CONNECT_PROTOCOL`). With `http2: 'auto'` this falls back to HTTP/1.1 instead.
 */
export class Http2UnsupportedError extends WebSocketError {
  constructor(message: string) {
    super('ERR_WS_H2_UNSUPPORTED', message);
  }
}
