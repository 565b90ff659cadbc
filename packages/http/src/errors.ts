import { brandBaseClass } from './error-brand.js';

/**
 * Every error this package throws or rejects with. Each carries a stable `code` (like Node's
 * `ERR_*`) so callers can branch without matching on messages, and server-side errors carry the
 * HTTP `status` the server answers with when the error escapes a handler.
 */
export class HttpError extends Error {
  /** Stable machine-readable code. */
  readonly code: string;
  /** HTTP status the server responds with when this error escapes a handler. */
  readonly status: number;
  /** Extra headers to send along with the error response (e.g. `Allow`). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Whether `message` may be shown to the client. Only 4xx messages are exposed by default. */
  readonly expose: boolean;

  constructor(
    status: number,
    message?: string,
    options?: { code?: string; headers?: Record<string, string>; cause?: unknown; expose?: boolean },
  ) {
    super(
      message ?? defaultMessage(status),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'HttpError';
    this.status = status;
    this.code = options?.code ?? 'ERR_HTTP_STATUS';
    this.headers = options?.headers;
    this.expose = options?.expose ?? (status >= 400 && status < 500);
  }
}
brandBaseClass(HttpError);

function defaultMessage(status: number): string {
  return STATUS_TEXT[status] ?? `HTTP ${status}`;
}

/** Reason phrases for the statuses this package produces itself. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The request body (announced or actually received) exceeds the route's `bodyLimit`. 413. */
export class BodyTooLargeError extends HttpError {
  readonly limit: number;
  constructor(limit: number) {
    super(413, `Request body exceeds the limit of ${limit} bytes`, { code: 'ERR_HTTP_BODY_TOO_LARGE' });
    this.name = 'BodyTooLargeError';
    this.limit = limit;
  }
}

/** `ctx.json()` was called on a body that is not valid JSON. 400. */
export class InvalidJsonError extends HttpError {
  constructor(cause: unknown) {
    super(400, 'Request body is not valid JSON', { code: 'ERR_HTTP_INVALID_JSON', cause });
    this.name = 'InvalidJsonError';
  }
}

/** `ctx.json()` was called on a body whose Content-Type is not JSON. 415. */
export class UnsupportedMediaTypeError extends HttpError {
  constructor(contentType: string) {
    super(415, `Expected a JSON body, got Content-Type ${JSON.stringify(contentType)}`, {
      code: 'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
    });
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** The client went away (or the stream errored) before the whole body arrived. 400. */
export class BodyAbortedError extends HttpError {
  constructor(cause?: unknown) {
    super(400, 'Request body was aborted before it completed', { code: 'ERR_HTTP_BODY_ABORTED', cause });
    this.name = 'BodyAbortedError';
  }
}

/** The body was already taken as a stream, so it cannot be read again (or vice versa). 500. */
export class BodyConsumedError extends HttpError {
  constructor() {
    super(500, 'Request body was already consumed as a stream', {
      code: 'ERR_HTTP_BODY_CONSUMED',
      expose: false,
    });
    this.name = 'BodyConsumedError';
  }
}

/** A path parameter or the request target contains malformed percent-encoding. 400. */
export class InvalidPathError extends HttpError {
  constructor(message = 'Malformed request path') {
    super(400, message, { code: 'ERR_HTTP_INVALID_PATH' });
    this.name = 'InvalidPathError';
  }
}

/** The request carries more than one `Host` header (RFC 9112 §3.2 requires 400). */
export class DuplicateHostError extends HttpError {
  constructor() {
    super(400, 'More than one Host header', { code: 'ERR_HTTP_DUPLICATE_HOST' });
    this.name = 'DuplicateHostError';
  }
}

/** A CONNECT was refused because `maxTunnels` (503) or `maxTunnelsPerClient` (429) tunnels are open. */
export class TooManyTunnelsError extends HttpError {
  constructor(status: 429 | 503, limit: number) {
    super(
      status,
      status === 429
        ? `This client already has ${limit} tunnels open`
        : `The server already has ${limit} tunnels open`,
      { code: 'ERR_HTTP_TOO_MANY_TUNNELS' },
    );
    this.name = 'TooManyTunnelsError';
  }
}

/**
 * A handler returned a value that does not match its route's `response` schema. 500; the message
 * (which names the place, e.g. `$.items[].id`) is not shown to the client but reaches `requestError`.
 */
export class ResponseShapeError extends HttpError {
  /** Where in the value, e.g. `$.user.id` (`[]` for any array item). */
  readonly path: string;
  constructor(path: string, expected: string) {
    super(500, `Response does not match the route's schema at ${path}: expected ${expected}`, {
      code: 'ERR_HTTP_RESPONSE_SHAPE',
    });
    this.name = 'ResponseShapeError';
    this.path = path;
  }
}

/** A route pattern is invalid or conflicts with one already registered (thrown at registration). */
export class RouteError extends Error {
  readonly code: 'ERR_HTTP_INVALID_ROUTE' | 'ERR_HTTP_ROUTE_CONFLICT';
  constructor(code: 'ERR_HTTP_INVALID_ROUTE' | 'ERR_HTTP_ROUTE_CONFLICT', message: string) {
    super(message);
    this.name = 'RouteError';
    this.code = code;
  }
}

/** An option passed to `createServer`, `serveStatic` or `request` is out of range. */
export class InvalidOptionError extends TypeError {
  readonly code = 'ERR_HTTP_INVALID_OPTION';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOptionError';
  }
}

/** Which HTTP/2 limit a session or stream crossed (see `Http2Options`). */
export type Http2Limit = 'rapidReset' | 'settingsFlood' | 'pingFlood' | 'streamIdle';

/**
 * An HTTP/2 client crossed one of the server's HTTP/2 limits. Reported through the server's
 * `clientError` event; a flood or rapid-reset session has been sent GOAWAY (ENHANCE_YOUR_CALM) and
 * closed, an idle stream has been reset (CANCEL).
 */
export class Http2LimitError extends Error {
  readonly code = 'ERR_HTTP2_LIMIT';
  /** The limit that was crossed. */
  readonly limit: Http2Limit;
  constructor(limit: Http2Limit, message: string) {
    super(message);
    this.name = 'Http2LimitError';
    this.limit = limit;
  }
}
brandBaseClass(Http2LimitError);

/** `listen()` was called twice, or after `close()`. */
export class ServerStateError extends Error {
  readonly code = 'ERR_HTTP_SERVER_STATE';
  constructor(message: string) {
    super(message);
    this.name = 'ServerStateError';
  }
}

/** Base class for errors raised by the client. */
export class ClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ClientError';
    this.code = code;
  }
}

/** The request did not complete (response headers and body) within `timeout` ms. */
export class RequestTimeoutError extends ClientError {
  readonly timeout: number;
  constructor(timeout: number) {
    super('ERR_HTTP_CLIENT_TIMEOUT', `Request timed out after ${timeout} ms`);
    this.name = 'RequestTimeoutError';
    this.timeout = timeout;
  }
}

/** The request was cancelled through its `AbortSignal`. */
export class RequestAbortedError extends ClientError {
  constructor(reason?: unknown) {
    super('ERR_HTTP_CLIENT_ABORTED', 'Request was aborted', reason);
    this.name = 'RequestAbortedError';
  }
}

/** The response body exceeds `maxBodySize`. */
export class ResponseTooLargeError extends ClientError {
  readonly limit: number;
  constructor(limit: number) {
    super('ERR_HTTP_RESPONSE_TOO_LARGE', `Response body exceeds the limit of ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
    this.limit = limit;
  }
}

/** More than `maxRedirects` redirects were followed. */
export class TooManyRedirectsError extends ClientError {
  constructor(limit: number) {
    super('ERR_HTTP_TOO_MANY_REDIRECTS', `Followed more than ${limit} redirects`);
    this.name = 'TooManyRedirectsError';
  }
}

/** The response body is not valid JSON (from `response.json()`). */
export class ResponseJsonError extends ClientError {
  constructor(cause: unknown) {
    super('ERR_HTTP_RESPONSE_INVALID_JSON', 'Response body is not valid JSON', cause);
    this.name = 'ResponseJsonError';
  }
}

/** The body was already read, so it cannot be read again. */
export class ResponseConsumedError extends ClientError {
  constructor() {
    super('ERR_HTTP_RESPONSE_CONSUMED', 'Response body was already consumed');
    this.name = 'ResponseConsumedError';
  }
}

/** The connection failed (refused, reset, TLS failure, ...) after all retries. `cause` holds the Node error. */
export class ConnectionError extends ClientError {
  constructor(cause: unknown) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    super('ERR_HTTP_CLIENT_CONNECTION', `Connection failed: ${msg}`, cause);
    this.name = 'ConnectionError';
  }
}
