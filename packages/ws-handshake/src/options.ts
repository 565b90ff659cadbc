import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/** permessage-deflate (RFC 7692) settings. Compression is off unless this is passed. */
export interface PerMessageDeflateOptions {
  /**
   * Ask for / impose a fresh compression context for every message the server sends.
   * Costs ratio, saves the 32 KiB-per-connection sliding window between messages.
   * @default false
   */
  serverNoContextTakeover?: boolean;
  /** Same for messages the client sends. @default false */
  clientNoContextTakeover?: boolean;
  /** LZ77 window (8-15) for server-to-client messages. @default 15 */
  serverMaxWindowBits?: number;
  /** LZ77 window (8-15) for client-to-server messages; only applied when the peer allows it. @default 15 */
  clientMaxWindowBits?: number;
  /** Messages smaller than this many bytes are sent uncompressed. @default 1024 */
  threshold?: number;
  /** zlib compression level (0-9). @default 6 */
  level?: number;
  /** zlib memLevel (1-9). @default 8 */
  memLevel?: number;
}

/** What to do when a peer reads so slowly that `bufferedAmount` exceeds `maxBufferedAmount`. */
export type SlowConsumerPolicy = 'close' | 'terminate';

/** Settings shared by server- and client-side connections. */
export interface ConnectionOptions {
  /**
   * Largest accepted message, in bytes, after decompression. Checked from the frame header
   * before any payload is buffered, and while inflating. Exceeding it fails the connection with 1009.
   * @default 1048576 (1 MiB)
   */
  maxPayload?: number;
  /**
   * Outbound bytes (socket buffer + compression queue) the connection may hold for a peer,
   * counting everything written: `send()`, broadcasts, publishes, and the library's own pongs,
   * heartbeat pings and close frames. When a frame takes the queue over it, reading from the
   * peer stops (so a peer that does not read cannot make us queue replies) until the queue
   * drains. A `send()` made while the queue is over it is refused and the peer is treated as a
   * slow consumer at once, so the queue never holds more than this plus one frame. 0 disables
   * the limit (and read-side backpressure).
   * @default 16777216 (16 MiB)
   */
  maxBufferedAmount?: number;
  /**
   * What the slow-consumer rule does: `'close'` sends a 1008 close frame (the connection is
   * destroyed if it is not acknowledged within `closeTimeout`); `'terminate'` destroys the socket
   * at once. Either way `closeCode` is 1008 and `closeError` a `SlowConsumerError`.
   * @default 'close'
   */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * How long the outbound queue may stay over `maxBufferedAmount` (reading paused) before the
   * slow-consumer rule fires. 0 fires it the moment the limit is crossed.
   * @default 10000
   */
  slowConsumerTimeout?: number;
  /**
   * Send a ping every this many milliseconds carrying a fresh 4-byte payload; a peer that has not
   * answered the previous one with a matching pong is terminated (close code 1006,
   * `HeartbeatTimeoutError`). Other traffic does not count: a peer that floods without reading
   * is not alive. No verdict is taken while this side has stopped reading (backpressure). 0 disables.
   * @default 30000 on the server, 0 on the client
   */
  heartbeatInterval?: number;
  /**
   * How long to wait for the peer to finish the closing handshake (and, for clients, for the
   * server to close TCP) before destroying the socket.
   * @default 10000
   */
  closeTimeout?: number;
  /**
   * Messages buffered by an async iterator (`for await`) before the socket is paused.
   * @default 1024
   */
  iteratorHighWaterMark?: number;
  /**
   * Deliver text messages as a UTF-8 `Buffer` (with `isBinary === false`) instead of a `string`,
   * as the `ws` package does, for code that checks `Buffer.isBuffer(data)`. The text is still
   * validated as UTF-8.
   * @default false
   */
  textAsBuffer?: boolean;
}

/** Result of an `authorize` hook: accept, or reject with an HTTP response before the 101. */
export type AuthorizeResult =
  | boolean
  | undefined
  | undefined
  | { status: number; headers?: Record<string, string>; body?: string };

/** Options for `handleUpgrade()` and `WebSocketServer`. */
export interface ServerOptions extends ConnectionOptions {
  /**
   * Subprotocols this server speaks, in order of preference of the client's list. Ignored when
   * `handleProtocols` is set. When neither is set, the client's first protocol is selected
   * (browsers fail a handshake that offered protocols and got none back).
   */
  protocols?: readonly string[];
  /** Pick a subprotocol from the client's offer; return `false`/`undefined` for none. */
  handleProtocols?: (offered: readonly string[], req: IncomingMessage) => string | false | undefined;
  /**
   * Allowed `Origin` values (exact match after lower-casing, e.g. `https://chat.example`) or a
   * predicate. Requests with another Origin get 403. Requests without Origin (non-browser
   * clients, which can send any Origin anyway) are allowed unless `requireOrigin` is set.
   */
  allowedOrigins?: readonly string[] | ((origin: string, req: IncomingMessage) => boolean);
  /** Reject requests without an Origin header when `allowedOrigins` is set. @default false */
  requireOrigin?: boolean;
  /**
   * Runs before the 101. Return `true`/`undefined` to accept, `false` for 401, or
   * `{ status, headers?, body? }` for any other rejection. A throw becomes 500.
   */
  authorize?: (req: IncomingMessage) => AuthorizeResult | Promise<AuthorizeResult>;
  /** Time allowed for `authorize` to settle; on expiry the client gets 503. @default 10000 */
  handshakeTimeout?: number;
  /** Enable permessage-deflate. `true` uses the defaults. @default false */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Extra headers for the 101 response (validated against header injection). */
  headers?: Record<string, string>;
}

/**
 * Options for `new WebSocketServer()`. As in `ws` 8, at most one of `port` (create and own an
 * HTTP server listening there), `server` (handle the `upgrade` events of an existing server) and
 * `noServer` (call `handleUpgrade()` yourself) may be given; with none of them the server is in
 * `noServer` mode.
 */
export interface WebSocketServerOptions extends ServerOptions {
  /** Only accept upgrades for this exact pathname (others get 404). @default undefined (any path) */
  path?: string;
  /** Create an HTTP(S) server and listen on this port (0 picks a free one). */
  port?: number;
  /**
   * Interface to bind with `port`. `new WebSocketServer()` follows `ws` and `node:http` (all
   * interfaces when absent); `createWebSocketServer()` defaults to `'127.0.0.1'`.
   */
  host?: string;
  /** `listen()` backlog with `port`. @default Node's default (511) */
  backlog?: number;
  /** With `port`: serve `wss:` with these TLS options (key/cert/...); plain `ws:` when absent. */
  tls?: import('node:tls').TlsOptions;
  /** Handle every `upgrade` event of this existing HTTP(S) server (it is not closed by `close()`). */
  server?: import('node:http').Server | import('node:https').Server;
  /** Do not listen anywhere: upgrades come only through `handleUpgrade()`. @default true when neither `port` nor `server` is set */
  noServer?: boolean;
}

/** Options for `createWebSocketServer()`: as `WebSocketServerOptions`, `port` 0 and host `'127.0.0.1'` by default. */
export interface CreateServerOptions extends WebSocketServerOptions {}

/** Options for `connect()`. */
export interface ClientOptions extends ConnectionOptions {
  /** Subprotocols to offer in `Sec-WebSocket-Protocol`. @default [] */
  protocols?: string | readonly string[];
  /** Extra request headers (e.g. Authorization, Cookie). */
  headers?: OutgoingHttpHeaders;
  /** `Origin` header to send (browsers always send one; Node clients usually need not). */
  origin?: string;
  /** TLS options for `wss:` (ca, cert, key, servername, ...). Certificates are verified. */
  tls?: TlsConnectionOptions;
  /** Opening handshake timeout in ms (TCP + TLS + HTTP); `HandshakeTimeoutError` when it elapses. @default 10000 */
  timeout?: number;
  /** The `ws` name for `timeout`; `timeout` wins when both are set. @default 10000 */
  handshakeTimeout?: number;
  /**
   * Abort the opening handshake: `connect()` rejects with `AbortedError` (`ERR_WS_ABORTED`, the
   * signal's reason as `cause`). Has no effect once the connection is open.
   */
  signal?: AbortSignal;
  /** Offer permessage-deflate. `true` uses the defaults. @default false */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Redirects (3xx with Location) to follow; 0 fails the handshake on a redirect. @default 0 */
  maxRedirects?: number;
  /** Local interface for the TCP connection. */
  localAddress?: string;
  /** IP family for DNS resolution (4 or 6). @default undefined (any) */
  family?: number;
  /**
   * Connect through an HTTP proxy with CONNECT (`ws:` and `wss:`; for `wss:` TLS to the origin runs
   * inside the tunnel with the usual certificate checks). A URL such as `'http://user:pass@proxy:3128'`
   * (userinfo becomes Basic `Proxy-Authorization`), or `'env'` for `HTTPS_PROXY` (`wss:`) /
   * `HTTP_PROXY` (`ws:`) and `NO_PROXY`, lower-case names first. Refusals fail with `ProxyError`.
   * @default undefined (direct connection; the environment is not read)
   */
  proxy?: string | URL | false;
  /**
   * Open the WebSocket as a stream of an HTTP/2 session (RFC 8441 extended CONNECT). `true`: only
   * over HTTP/2 (`wss:` with ALPN `h2`, `ws:` as cleartext h2 with prior knowledge); fails with
   * `Http2UnsupportedError` when the server does not select `h2` or does not advertise
   * `SETTINGS_ENABLE_CONNECT_PROTOCOL`. `'auto'` (`wss:` only): HTTP/2 when the server offers both,
   * else HTTP/1.1. Sockets to the same origin with equal `tls` options share one session,
   * closed when its last WebSocket closes. Not combinable with `proxy`; redirects are not followed.
   * @default false
   */
  http2?: boolean | 'auto';
}

export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
export const DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024;
export const DEFAULT_CLOSE_TIMEOUT = 10_000;
export const DEFAULT_SLOW_CONSUMER_TIMEOUT = 10_000;
export const DEFAULT_SERVER_HEARTBEAT = 30_000;
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
export const DEFAULT_DEFLATE_THRESHOLD = 1024;
export const DEFAULT_ITERATOR_HWM = 1024;

/**
 * Options for `new BrowserWebSocket(url, protocols?, options?)`: the `connect()` options, with the
 * subprotocols given as the second argument.
 */
export interface BrowserWebSocketOptions extends Omit<ClientOptions, 'protocols'> {}
