import type { ResponseSchema } from './serializer.js';
import type { IncomingMessage } from 'node:http';
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { InvalidOptionError } from './errors.js';

/** Options for `createServer()`. Every limit has a default; every wait has a timeout. */
export interface ServerOptions {
  /**
   * Node TLS server options (`key`, `cert`, `ca`, `ALPNProtocols`, ...). When present the server runs
   * over node:https; everything else stays the same.
   */
  tls?: TlsOptions;
  /**
   * Maximum request body size in bytes read by `ctx.json()`, `ctx.text()`, `ctx.buffer()` and
   * `ctx.stream()`. Routes can override it. Larger bodies get 413.
   * @default 1_048_576 (1 MiB)
   */
  bodyLimit?: number;
  /**
   * Maximum size of the request line plus headers, in bytes. Larger requests get 431.
   * @default 16_384 (16 KiB)
   */
  maxHeaderSize?: number;
  /**
   * Maximum number of header lines kept per request (Node drops the rest).
   * @default 100
   */
  maxHeadersCount?: number;
  /**
   * Time allowed to receive the complete request headers, in ms. Slow senders get 408 and are closed.
   * @default 10_000
   */
  headersTimeout?: number;
  /**
   * Time allowed to receive the complete request (headers and body), in ms. 0 disables.
   * @default 30_000
   */
  requestTimeout?: number;
  /**
   * How long an idle keep-alive connection stays open waiting for the next request, in ms
   * (announced as `Keep-Alive: timeout=N`; closed after it plus Node's one-second grace, found by
   * the same sweep as `socketTimeout` on HTTP/1). 0 = no limit.
   * @default 5_000
   */
  keepAliveTimeout?: number;
  /**
   * A connection with no traffic in either direction for this long is destroyed, in ms (0 = never).
   * Catches clients that stop reading a response. Upgraded and tunnelled sockets are exempt. On
   * HTTP/1 one sweep every quarter of the shorter of this and the keep-alive time (at most every
   * second) checks every connection, so a silent one goes within two sweeps after the limit; no
   * per-socket timer is armed or re-armed per request.
   * @default 120_000
   */
  socketTimeout?: number;
  /**
   * Requests served on one connection before it is closed (0 = unlimited). Off by default because
   * Node answers pipelined requests past the limit with 503 instead of closing cleanly.
   * @default 0
   */
  maxRequestsPerSocket?: number;
  /**
   * How often Node checks connections for `headersTimeout`/`requestTimeout`, in ms. Defaults to a
   * quarter of the smaller timeout, clamped to [100, 1000], so expiry is detected promptly.
   * @default derived
   */
  connectionsCheckingInterval?: number;
  /**
   * Reject HTTP/1.1 requests without a Host header (400), as RFC 9112 requires.
   * @default true
   */
  requireHostHeader?: boolean;
  /**
   * TLS only: time allowed for the TLS handshake, in ms.
   * @default 10_000
   */
  handshakeTimeout?: number;
  /** CONNECT tunnel (HTTP proxy) policy. Absent: every CONNECT is answered 405. */
  connect?: ConnectOptions;
  /**
   * Serve HTTP/2. `true` needs `tls`: ALPN offers `h2`, and `http/1.1` on the same port unless
   * `h2.allowHTTP1` is false. `'h2c'`: cleartext HTTP/2 with prior knowledge only (for internal
   * hops; no TLS, no HTTP/1.1). Routes, context, hooks, limits and `close()` behave the same.
   * @default false
   */
  http2?: boolean | 'h2c';
  /** HTTP/2 limits. Used only when `http2` is set. */
  h2?: Http2Options;
  /**
   * Runs before the handler of every routed request (auth, logging, CORS headers, ...). Return
   * `undefined` (or a promise of it) to continue to the handler; return anything else to send it as
   * the response instead, skipping the handler. Throwing works as in a handler. Requests that match
   * no route (404/405/automatic OPTIONS) do not run it. For `Expect: 100-continue` requests the
   * `100 Continue` is sent only after the hook passes (so a 401 is sent before any upload); do not
   * read the body inside the hook.
   */
  onRequest?: (ctx: import('./context.js').Context) => unknown;
  /**
   * Called when a handler throws or rejects. Return a value to send it as the response
   * (like a handler's return value); return `undefined` for the default JSON error response.
   */
  onError?: (error: unknown, ctx: import('./context.js').Context) => unknown;
  /** Called when no route matches (neither path nor method). Default: 404 JSON body. */
  notFound?: (ctx: import('./context.js').Context) => unknown;
}

/**
 * HTTP/2 limits of `createServer({ http2 })`. Flood and rapid-reset limits count frames per session
 * over a fixed window; a session over any of them is sent GOAWAY (ENHANCE_YOUR_CALM) and closed,
 * and `clientError` gets an `Http2LimitError`.
 */
export interface Http2Options {
  /**
   * TLS only: also answer HTTP/1.1 clients (ALPN `http/1.1` or no ALPN) on the same port.
   * @default true
   */
  allowHTTP1?: boolean;
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once; more are refused
   * (RST_STREAM REFUSED_STREAM), and a session that keeps opening them is closed.
   * @default 100
   */
  maxConcurrentStreams?: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE, in bytes (decoded names + values + 32 per field). A larger
   * header block resets the stream (ENHANCE_YOUR_CALM).
   * @default the server's `maxHeaderSize` (16_384)
   */
  maxHeaderListSize?: number;
  /**
   * Length of the window the flood and rapid-reset counters use, in ms.
   * @default 10_000
   */
  floodWindow?: number;
  /**
   * SETTINGS frames a client may send per window (each one costs the server an ACK).
   * @default 50
   */
  maxSettingsPerWindow?: number;
  /**
   * PING frames a client may send per window.
   * @default 100
   */
  maxPingsPerWindow?: number;
  /**
   * Streams a client may reset (or abandon before the response ended) per window: the
   * CVE-2023-44487 "rapid reset" attack opens and cancels streams to make the server start work
   * the concurrency limit never sees.
   * @default 200
   */
  maxResetsPerWindow?: number;
  /**
   * A stream with no frames in either direction for this long, while its request is still
   * arriving or its response is being sent, is reset (CANCEL), in ms (0 = never). A handler that
   * takes its time over a complete request is not cut. The session as a whole is closed after
   * `socketTimeout` without traffic.
   * @default 30_000
   */
  streamIdleTimeout?: number;
  /**
   * Memory nghttp2 may use per session, in MiB, before new streams are refused.
   * @default 10
   */
  maxSessionMemory?: number;
}

/** Per-route options. */
export interface RouteOptions {
  /** Body size limit for this route, in bytes. @default the server's `bodyLimit` */
  bodyLimit?: number;
  /**
   * JSON schema (a subset, see `ResponseSchema`) of the plain object or array the handler returns.
   * Compiled once into a serializer: faster than `JSON.stringify` for that shape, only the listed
   * properties are sent, and a value that does not match is a 500 (`ResponseShapeError`).
   * @default none: `JSON.stringify`
   */
  response?: ResponseSchema;
}

/** Target of a CONNECT request. */
export interface TunnelTarget {
  host: string;
  port: number;
}

/** CONNECT tunnel policy. Nothing is reachable unless the allowlist says so. */
export interface ConnectOptions {
  /**
   * Which targets may be tunnelled to: entries like `'example.com:443'`, `'127.0.0.1:8080'`,
   * `'*.example.com:443'` (any subdomain) or `'db.internal:*'` (any port); or a predicate.
   * Host names are compared lower-cased; note that names are checked before DNS resolution.
   * @default [] (deny everything)
   */
  allow?: readonly string[] | ((target: TunnelTarget, req: IncomingMessage) => boolean | Promise<boolean>);
  /**
   * Time allowed to connect to the target, in ms. Failures give 502, timeouts 504.
   * @default 10_000
   */
  connectTimeout?: number;
  /**
   * Idle timeout for an established tunnel, in ms (0 = none).
   * @default 300_000
   */
  idleTimeout?: number;
  /**
   * CONNECT requests handled at once (being checked, connecting or tunnelling; each open tunnel
   * holds two sockets). Beyond it: 503 `ERR_HTTP_TOO_MANY_TUNNELS`.
   * @default 1024
   */
  maxTunnels?: number;
  /**
   * The same, per client IP address. Beyond it: 429 `ERR_HTTP_TOO_MANY_TUNNELS`.
   * @default 32
   */
  maxTunnelsPerClient?: number;
}

/** Options for `server.close()`. */
export interface CloseOptions {
  /**
   * Milliseconds to let in-flight requests (and upgraded sockets) finish before every remaining
   * connection is destroyed.
   * @default 10_000
   */
  deadline?: number;
}

/** Options for `serveStatic()`. */
export interface StaticOptions {
  /**
   * File served for a directory request; `false` disables (directories then give 404).
   * @default 'index.html'
   */
  index?: string | false;
  /**
   * How dot-files (any path segment starting with `.`) are treated: `'deny'` → 403,
   * `'ignore'` → 404, `'allow'` → served.
   * @default 'ignore'
   */
  dotfiles?: 'allow' | 'deny' | 'ignore';
  /**
   * `Cache-Control: max-age` in seconds (0 sends `no-cache`, so clients revalidate with ETag).
   * @default 0
   */
  maxAge?: number;
  /** Add `immutable` to Cache-Control (use with fingerprinted file names). @default false */
  immutable?: boolean;
  /** Send and honour ETag / If-None-Match. @default true */
  etag?: boolean;
  /** Send and honour Last-Modified / If-Modified-Since. @default true */
  lastModified?: boolean;
  /** Extra or overriding content types by extension, e.g. `{ '.md': 'text/markdown; charset=utf-8' }`. */
  contentTypes?: Record<string, string>;
  /**
   * Serve `file.br` / `file.gz` made at build time instead of `file` when the client accepts
   * that encoding (with `Content-Encoding` and `Vary: Accept-Encoding`). Nothing is compressed at
   * request time.
   * @default false
   */
  precompressed?: boolean;
  /**
   * Route parameter holding the file path relative to `root`.
   * @default '*' (the wildcard of a route like `/static/*`)
   */
  param?: string;
}

/** Options for the client's `request()`. */
export interface RequestOptions {
  /** @default 'GET' (or 'POST' when `body`/`json` is given) */
  method?: string;
  headers?: Record<string, string | number | readonly string[]>;
  /** Raw request body. A Readable is streamed and makes the request non-retryable. */
  body?: string | Uint8Array | Readable;
  /** Serialised with JSON.stringify and sent with `Content-Type: application/json`. */
  json?: unknown;
  /**
   * Per attempt: time allowed from sending the request until the response body has been read, in ms.
   * @default 30_000
   */
  timeout?: number;
  /**
   * Extra attempts after a connection error or a 502/503/504, for idempotent methods only
   * (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) and only when the body is replayable.
   * @default 2
   */
  retries?: number;
  /** Base delay for exponential backoff between retries, in ms (a `Retry-After` header is honoured up to 10× this). @default 100 */
  retryDelay?: number;
  /** Number of redirects to follow (0 = return the 3xx response as is). @default 0 */
  maxRedirects?: number;
  /**
   * Maximum response body size in bytes read by `body()`, `text()`, `json()`, `stream()`.
   * @default 10_485_760 (10 MiB)
   */
  maxBodySize?: number;
  /** Cancels the request (and any pending retry); rejects with `RequestAbortedError`. */
  signal?: AbortSignal;
  /**
   * Speak HTTP/2: `true` always (h2 over TLS for https:, h2c with prior knowledge for http:);
   * `'auto'` offers h2 and HTTP/1.1 by ALPN on https: and uses what the server picks (http: stays
   * HTTP/1.1). h2 requests to one origin share one session. Ignored when `agent` is given.
   * @default false
   */
  http2?: boolean | 'auto';
  /** Agent to use instead of the shared keep-alive agents. */
  agent?: HttpAgent | HttpsAgent;
  /** TLS options for https URLs (`ca`, `cert`, `key`, `servername`, ...). */
  tls?: SecureContextOptions & { servername?: string; rejectUnauthorized?: boolean };
}

export const SERVER_DEFAULTS = {
  bodyLimit: 1_048_576,
  maxHeaderSize: 16_384,
  maxHeadersCount: 100,
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  socketTimeout: 120_000,
  maxRequestsPerSocket: 0,
  requireHostHeader: true,
  handshakeTimeout: 10_000,
} as const;

export const H2_DEFAULTS = {
  allowHTTP1: true,
  maxConcurrentStreams: 100,
  floodWindow: 10_000,
  maxSettingsPerWindow: 50,
  maxPingsPerWindow: 100,
  maxResetsPerWindow: 200,
  streamIdleTimeout: 30_000,
  maxSessionMemory: 10,
} as const;

export const CONNECT_DEFAULTS = {
  connectTimeout: 10_000,
  idleTimeout: 300_000,
  maxTunnels: 1024,
  maxTunnelsPerClient: 32,
} as const;

export const CLIENT_DEFAULTS = {
  timeout: 30_000,
  retries: 2,
  retryDelay: 100,
  maxRedirects: 0,
  maxBodySize: 10_485_760,
} as const;

/** Throws `InvalidOptionError` unless `value` is undefined or an integer in [min, max]. */
export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}
