import type { IncomingMessage, ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DuplicateHostError, Http2LimitError, type Http2Limit } from './errors.js';
import { checkInt, H2_DEFAULTS, type Http2Options, SERVER_DEFAULTS, type ServerOptions } from './options.js';
import { type SessionStreams, StreamBatch } from './h2-stream-batch.js';
import { InactivitySweep } from './inactivity.js';
import { sendError, writeStatus } from './respond.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** What the HTTP/2 transport hands back to the `Server` that owns the router. */
export interface H2Handlers {
  /** A routed request, HTTP/2 (compat objects) or HTTP/1.1 fallback alike. */
  request: (req: IncomingMessage, res: ServerResponse) => void;
  checkContinue: (req: IncomingMessage, res: ServerResponse) => void;
  /** HTTP/1.1 fallback only. */
  clientError: (err: Error, socket: Duplex) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  connect: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** An RFC 8441 extended CONNECT (`:protocol` set, e.g. `websocket`) on an h2 stream. */
  extendedConnect: (req: http2.Http2ServerRequest, res: ServerResponse) => void;
  /** A session or stream crossed an HTTP/2 limit, or failed at the protocol level. */
  violation: (err: Error, socket: Duplex) => void;
}

/**
 * HTTP/1.1 asks for `Connection: close` in a few places (closing server, unread body); HTTP/2 has
 * no such header (RFC 9113 §8.2.2) and ends the stream instead, so it is dropped here rather than
 * at each call site, which keeps the HTTP/1.1 path free of protocol checks.
 */
class H2Response extends http2.Http2ServerResponse {
  override setHeader(name: string, value: number | string | readonly string[]): this {
    if (name.length === 10 && name.toLowerCase() === 'connection') return this;
    super.setHeader(name, value);
    return this;
  }

  /**
   * node:http2 treats a flat `[name, value, ...]` array as its slow path (every name removed, then
   * appended one by one through `setHeader`), a measurable share of a small response; the shared
   * responder passes one, so it becomes the object node:http2 stores directly. Repeated names keep
   * the append semantics (one field with several values).
   */
  override writeHead(statusCode: number, ...rest: any[]): this {
    const last = rest.length - 1;
    const headers = rest[last];
    if (Array.isArray(headers) && headers.length % 2 === 0 && !Array.isArray(headers[0])) {
      const fields: Record<string, number | string | string[]> = { __proto__: null } as never;
      for (let i = 0; i < headers.length; i += 2) {
        const name = String(headers[i]).trim().toLowerCase();
        if (name === 'connection') continue;
        const value = headers[i + 1] as number | string | string[];
        const seen = fields[name];
        if (seen === undefined) fields[name] = value;
        else fields[name] = ([] as (number | string)[]).concat(seen, value) as string[];
      }
      rest[last] = fields;
    }
    return super.writeHead(statusCode, ...(rest as [])) as this;
  }
}

/** Counts events over a fixed window; `hit()` is true once `max` is exceeded within one window. */
class WindowCounter {
  #start = 0;
  #count = 0;
  constructor(
    readonly window: number,
    readonly max: number,
  ) {}
  hit(now: number): boolean {
    if (now - this.#start >= this.window) {
      this.#start = now;
      this.#count = 0;
    }
    return ++this.#count > this.max;
  }
}

/** RFC 9113 §8.3.1: a Host field that names another authority than `:authority` is malformed. */
function conflictingAuthority(req: http2.Http2ServerRequest): boolean {
  const authority = req.headers[':authority'];
  if (authority === undefined) return false;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === 'host' && raw[i + 1]!.toLowerCase() !== authority.toLowerCase()) return true;
  }
  return false;
}

/**
 * The HTTP/2 side of a `Server`: a node:http2 server (TLS with ALPN, or cleartext prior knowledge)
 * whose requests go through the same router and context code as HTTP/1.1, plus the session-level
 * limits node:http2 does not enforce itself and a GOAWAY-first graceful close.
 */
export class H2Transport {
  readonly node: http2.Http2SecureServer | http2.Http2Server;
  readonly #handlers: H2Handlers;
  readonly #limits: Required<Omit<Http2Options, 'maxHeaderListSize'>>;
  readonly #maxHeaderList: number;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  /** Every accepted TCP socket, so a deadline can end HTTP/1.1 fallback and h2 alike. */
  readonly #sockets = new Set<Socket>();
  #closing = false;
  /** New streams wait here for their idle timer and reset count (see `StreamBatch`). */
  readonly #batch: StreamBatch;

  constructor(options: ServerOptions, handlers: H2Handlers) {
    const o = options.h2 ?? {};
    checkInt('h2.maxConcurrentStreams', o.maxConcurrentStreams, 1, 2 ** 31 - 1);
    checkInt('h2.maxHeaderListSize', o.maxHeaderListSize, 1024, 2 ** 32 - 1);
    checkInt('h2.floodWindow', o.floodWindow, 1);
    checkInt('h2.maxSettingsPerWindow', o.maxSettingsPerWindow, 1);
    checkInt('h2.maxPingsPerWindow', o.maxPingsPerWindow, 1);
    checkInt('h2.maxResetsPerWindow', o.maxResetsPerWindow, 1);
    checkInt('h2.streamIdleTimeout', o.streamIdleTimeout, 0);
    checkInt('h2.maxSessionMemory', o.maxSessionMemory, 1);
    this.#handlers = handlers;
    this.#limits = { ...H2_DEFAULTS, ...stripUndefined(o) };
    const idle = this.#limits.streamIdleTimeout;
    // The idle limit is enforced at most this much late; resets are counted at most this late.
    this.#batch = new StreamBatch(idle > 0 ? Math.min(100, Math.max(5, Math.floor(idle / 4))) : 100);
    this.#maxHeaderList = o.maxHeaderListSize ?? options.maxHeaderSize ?? SERVER_DEFAULTS.maxHeaderSize;
    const settings: http2.Settings = {
      maxConcurrentStreams: this.#limits.maxConcurrentStreams,
      maxHeaderListSize: this.#maxHeaderList,
      enablePush: false,
      // RFC 8441: clients may open WebSockets (or other `:protocol`s) as streams; see `h2connect()`.
      enableConnectProtocol: true,
    };
    const common = {
      settings,
      maxSessionMemory: this.#limits.maxSessionMemory,
      // Streams refused over maxConcurrentStreams before the session is closed (GOAWAY).
      maxSessionRejectedStreams: 100,
      Http2ServerResponse: H2Response as unknown as typeof http2.Http2ServerResponse,
    };
    let node: http2.Http2SecureServer | http2.Http2Server;
    if (options.http2 === 'h2c') {
      node = http2.createServer(common);
    } else {
      if (options.tls === undefined) throw new TypeError('http2: true needs tls (use "h2c" for cleartext)');
      const allowHTTP1 = this.#limits.allowHTTP1;
      const secure = http2.createSecureServer({
        handshakeTimeout: options.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout,
        ...options.tls,
        ...common,
        allowHTTP1,
      } as http2.SecureServerOptions);
      if (allowHTTP1) configureHttp1Fallback(secure, options);
      node = secure;
    }
    // h2c: one sweep instead of Node's session timer, which is re-armed on every frame of every
    // stream (see inactivity.ts); it reads the socket's byte counts, which the session keeps moving.
    // TLS servers keep `server.timeout`: it also times the HTTP/1.1 fallback, whose upgraded
    // sockets must outlive it, and the sweep would see only the TCP socket under the TLS one.
    const socketTimeout = options.socketTimeout ?? SERVER_DEFAULTS.socketTimeout;
    const inactivity =
      options.http2 === 'h2c' && socketTimeout > 0 ? new InactivitySweep(socketTimeout, 0) : null;
    if (options.http2 !== 'h2c') node.setTimeout(socketTimeout);
    node.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      inactivity?.add(socket);
    });
    node.on('session', this.#onSession);
    node.on('request', this.#onRequest);
    node.on('checkContinue', this.#onCheckContinue);
    node.on('connect', this.#onConnect);
    node.on('upgrade', handlers.upgrade);
    node.on('clientError', handlers.clientError);
    node.on('sessionError', (err: Error, session: http2.ServerHttp2Session) => {
      // Limit errors were reported when the session was cut off.
      if (!(err instanceof Http2LimitError) && session.socket !== undefined)
        handlers.violation(err, session.socket);
    });
    this.node = node;
  }

  /** False when the h2 request was refused here (oversized or conflicting header fields). */
  #admit(req: http2.Http2ServerRequest, res: ServerResponse): boolean {
    // nghttp2 enforces SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged it; a
    // client that never does would get the 64 KiB protocol default, so it is checked here too
    // (RFC 9113 §6.5.2 size: name + value + 32 per field).
    let size = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i++) size += raw[i]!.length;
    if (size + 16 * raw.length > this.#maxHeaderList) {
      req.stream.close(NGHTTP2_ENHANCE_YOUR_CALM);
      return false;
    }
    if (conflictingAuthority(req)) {
      sendError(res, new DuplicateHostError());
      return false;
    }
    return true;
  }

  readonly #onRequest = (req: http2.Http2ServerRequest | IncomingMessage, res: ServerResponse): void => {
    if (req instanceof http2.Http2ServerRequest && !this.#admit(req, res)) return;
    this.#handlers.request(req as IncomingMessage, res);
  };

  readonly #onCheckContinue = (
    req: http2.Http2ServerRequest | IncomingMessage,
    res: ServerResponse,
  ): void => {
    if (req instanceof http2.Http2ServerRequest && !this.#admit(req, res)) return;
    this.#handlers.checkContinue(req as IncomingMessage, res);
  };

  /**
   * node:http2 reports an h2 CONNECT as (req, res) and an HTTP/1.1 fallback CONNECT as
   * (req, socket, head) on the same event. Extended CONNECT (RFC 8441, `:protocol`) goes to the
   * `h2connect()` routes; plain tunnels over h2 streams are not offered: 405.
   */
  readonly #onConnect = (
    req: IncomingMessage,
    second: Duplex | http2.Http2ServerResponse,
    head: Buffer,
  ): void => {
    if (second instanceof http2.Http2ServerResponse) {
      const res = second as unknown as ServerResponse;
      if (req instanceof http2.Http2ServerRequest && req.headers[':protocol'] !== undefined) {
        if (this.#admit(req, res)) this.#handlers.extendedConnect(req, res);
        return;
      }
      res.setHeader('allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      writeStatus(res, 405, 'ERR_HTTP_METHOD_NOT_ALLOWED', 'CONNECT is not served over HTTP/2');
      return;
    }
    this.#handlers.connect(req, second, head);
  };

  readonly #onSession = (session: http2.ServerHttp2Session): void => {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    // Errors reach 'sessionError' on the server; without this one an errored session would throw.
    session.on('error', () => {});
    if (this.#closing) {
      session.close();
      return;
    }
    const limits = this.#limits;
    const settings = new WindowCounter(limits.floodWindow, limits.maxSettingsPerWindow);
    const pings = new WindowCounter(limits.floodWindow, limits.maxPingsPerWindow);
    const resets = new WindowCounter(limits.floodWindow, limits.maxResetsPerWindow);
    let cut = false;
    const cutOff = (limit: Http2Limit, message: string): void => {
      if (cut) return;
      cut = true;
      const socket = session.socket;
      if (socket !== undefined) this.#handlers.violation(new Http2LimitError(limit, message), socket);
      // GOAWAY(ENHANCE_YOUR_CALM) goes out before the socket is closed.
      session.destroy(new Http2LimitError(limit, message), NGHTTP2_ENHANCE_YOUR_CALM);
    };
    session.on('remoteSettings', () => {
      if (settings.hit(Date.now()))
        cutOff(
          'settingsFlood',
          `More than ${limits.maxSettingsPerWindow} SETTINGS frames in ${limits.floodWindow} ms`,
        );
    });
    session.on('ping', () => {
      if (pings.hit(Date.now()))
        cutOff('pingFlood', `More than ${limits.maxPingsPerWindow} PING frames in ${limits.floodWindow} ms`);
    });
    const idle = limits.streamIdleTimeout;
    const violation = this.#handlers.violation;
    const streams: SessionStreams = {
      reset: () => {
        // Streams cut by our own shutdown are not the client's doing.
        if (this.#closing) return;
        if (resets.hit(Date.now()))
          cutOff(
            'rapidReset',
            `More than ${limits.maxResetsPerWindow} streams reset in ${limits.floodWindow} ms`,
          );
      },
      track: (stream) => {
        let timedOut = false;
        stream.once('close', () => {
          if (stream.rstCode !== NGHTTP2_NO_ERROR && !timedOut) streams.reset();
        });
        if (idle <= 0) return;
        const onIdle = (): void => {
          // A handler still working on a fully received request is not the client's stall.
          // (`_readableState.ended`: END_STREAM arrived, whether or not the body was read yet.)
          const received =
            stream.endAfterHeaders ||
            (stream as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
          if (received && !stream.headersSent && !stream.closed) {
            stream.setTimeout(idle, onIdle);
            return;
          }
          timedOut = true;
          const socket = session.socket;
          if (socket !== undefined)
            violation(new Http2LimitError('streamIdle', `Stream ${stream.id} idle for ${idle} ms`), socket);
          stream.close(NGHTTP2_CANCEL);
        };
        stream.setTimeout(idle, onIdle);
      },
    };
    const batch = this.#batch;
    session.on('stream', (stream: http2.ServerHttp2Stream) => batch.add(stream, streams));
  };

  /**
   * GOAWAY to every session (open streams finish, new ones are refused), idle HTTP/1.1 fallback
   * connections closed; at `deadline` every remaining socket is destroyed and `onDeadline` runs.
   */
  close(deadline: number, onDeadline: () => void): Promise<void> {
    // Resets seen before the shutdown still count; streams still open get their timers.
    this.#batch.stop();
    this.#closing = true;
    const node = this.node;
    return new Promise<void>((resolve) => {
      let sweep: NodeJS.Timeout | undefined;
      let force: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearInterval(sweep);
        clearTimeout(force);
        resolve();
      };
      const destroyAll = (): void => {
        for (const session of this.#sessions) session.destroy();
        for (const socket of this.#sockets) socket.destroy();
        onDeadline();
      };
      for (const session of this.#sessions) session.close();
      if (!node.listening) {
        destroyAll();
        done();
        return;
      }
      node.close(() => done());
      const fallback = node as http2.Http2SecureServer & { closeIdleConnections?: () => void };
      fallback.closeIdleConnections?.();
      sweep = setInterval(() => fallback.closeIdleConnections?.(), 50);
      force = setTimeout(destroyAll, deadline);
    });
  }
}

/** The HTTP/1.1 fallback of an `allowHTTP1` server reads these limits from the server object. */
function configureHttp1Fallback(node: http2.Http2SecureServer, options: ServerOptions): void {
  const requestTimeout = options.requestTimeout ?? SERVER_DEFAULTS.requestTimeout;
  let headersTimeout = options.headersTimeout ?? SERVER_DEFAULTS.headersTimeout;
  if (requestTimeout > 0 && headersTimeout > requestTimeout) headersTimeout = requestTimeout;
  const smallest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
  Object.assign(node, {
    maxHeaderSize: options.maxHeaderSize ?? SERVER_DEFAULTS.maxHeaderSize,
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: options.keepAliveTimeout ?? SERVER_DEFAULTS.keepAliveTimeout,
    connectionsCheckingInterval:
      options.connectionsCheckingInterval ?? Math.max(100, Math.min(1000, Math.floor(smallest / 4))),
    requireHostHeader: options.requireHostHeader ?? SERVER_DEFAULTS.requireHostHeader,
    maxHeadersCount: options.maxHeadersCount ?? SERVER_DEFAULTS.maxHeadersCount,
    maxRequestsPerSocket: options.maxRequestsPerSocket ?? SERVER_DEFAULTS.maxRequestsPerSocket,
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] !== undefined) out[key] = o[key];
  return out;
}
