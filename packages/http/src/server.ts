import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';

const http2Constants = http2.constants;
import * as https from 'node:https';
import { type AddressInfo, connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { announcedLength, Context } from './context.js';
import {
  BodyTooLargeError,
  DuplicateHostError,
  HttpError,
  InvalidPathError,
  ServerStateError,
  TooManyTunnelsError,
} from './errors.js';
import {
  type CloseOptions,
  CONNECT_DEFAULTS,
  type ConnectOptions,
  checkInt,
  type RouteOptions,
  SERVER_DEFAULTS,
  type ServerOptions,
  type TunnelTarget,
} from './options.js';
import { H2Transport } from './h2-server.js';
import { InactivitySweep } from './inactivity.js';
import { normalizePath } from './path.js';
import { rawResponse, send, sendError, writeStatus } from './respond.js';
import { Router } from './router.js';
import { compileSerializer } from './serializer.js';

/** A route handler: return a value (see README "Responses") or a promise of one. */
export type Handler<P extends Record<string, string> = Record<string, string>> = (ctx: Context<P>) => unknown;

/**
 * Called for an upgrade request on a registered path; it owns the socket from then on.
 * Same shape as `handleUpgrade(req, socket, head)` of a WebSocket server, plus the path params.
 */
export type UpgradeHandler = (
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  params: Readonly<Record<string, string>>,
) => unknown;

/**
 * Called for an RFC 8441 extended CONNECT on an HTTP/2 stream (`:protocol` set, e.g. `websocket`)
 * on a registered path; it owns the stream from then on and answers it (e.g. `:status 200`).
 * Same shape as `handleH2Connect(stream, headers)` of @net/ws-handshake, plus the path params.
 */
export type H2ConnectHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  params: Readonly<Record<string, string>>,
) => unknown;

/** The parameter names of a route pattern: `ParamNames<'/a/:x/:y'>` is `'x' | 'y'` (`*` for a wildcard). */
export type ParamNames<P extends string> = P extends `${infer Head}/${infer Tail}`
  ? ParamNames<Head> | ParamNames<Tail>
  : P extends `:${infer Name}`
    ? Name
    : P extends `*${infer Name}`
      ? Name extends ''
        ? '*'
        : Name
      : never;
/** The params object type of a route pattern: `PathParams<'/rooms/:room'>` is `{ room: string }`. */
export type PathParams<P extends string> = string extends P
  ? Record<string, string>
  : { [K in ParamNames<P>]: string };

/** Events of a `Server`. */
export interface ServerEvents {
  /** The server is listening. */
  listening: [];
  /** `close()` was called: stop starting long-lived work (e.g. close WebSockets politely). */
  closing: [];
  /** Every connection is gone after `close()`. */
  close: [];
  /** A handler threw or rejected with something other than a 4xx `HttpError`. */
  requestError: [error: unknown, ctx: Context];
  /** A malformed, oversized or too slow request; the server has already answered and closed it. */
  clientError: [error: Error, socket: Duplex];
  /** TLS handshake failure (https only); the socket is destroyed. */
  tlsClientError: [error: Error, socket: Duplex];
  /** An upgrade handler threw or rejected; the socket is destroyed. */
  upgradeError: [error: unknown, req: http.IncomingMessage];
  /** A CONNECT tunnel was established. */
  tunnel: [target: TunnelTarget, req: http.IncomingMessage];
  /** A CONNECT request was refused or its upstream failed. */
  tunnelError: [error: Error, target: TunnelTarget | null, req: http.IncomingMessage];
}

interface RouteRecord {
  handler: Handler;
  bodyLimit: number;
  /** Compiled from the route's `response` schema. */
  serialize: ((value: unknown) => string) | undefined;
}

/** Where `Server.listen()` listens; omitted fields take Node's defaults (port 0: any free port). */
export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
}

/** Node reads this per response to write the `Keep-Alive` header. */
type KeepAliveResponse = http.ServerResponse & { _keepAliveTimeout?: number };

const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function endRaw(socket: Duplex, status: number, extraHeaders?: string): void {
  if (socket.writable) {
    socket.end(rawResponse(status, extraHeaders));
    // A peer that never reads must not pin the socket open.
    setTimeout(() => socket.destroy(), 1000).unref();
  } else socket.destroy();
}

/**
 * An HTTP (or HTTPS, with `tls`) server with routing, limits and hardened defaults. Create it with
 * `createServer()`.
 */
export class Server extends EventEmitter<ServerEvents> {
  /** The underlying node:http, node:https or (with `http2`) node:http2 server. */
  readonly node: http.Server | https.Server | http2.Http2SecureServer | http2.Http2Server;
  readonly #h2: H2Transport | undefined;
  readonly #router = new Router<RouteRecord>();
  readonly #upgrades = new Router<UpgradeHandler>();
  readonly #h2connects = new Router<H2ConnectHandler>();
  readonly #bodyLimit: number;
  readonly #options: ServerOptions;
  readonly #connect: ConnectOptions | undefined;
  /** CONNECT requests being handled or tunnelled, in total and per client address. */
  #tunnels = 0;
  readonly #tunnelsByClient = new Map<string, number>();
  /** Upgraded and tunnelled sockets: Node no longer tracks them as HTTP connections. */
  readonly #detached = new Set<Duplex>();
  /** HTTP/1 `socketTimeout` and `keepAliveTimeout` (h2c sessions have their own sweep in h2-server.ts). */
  #inactivity: InactivitySweep | null = null;
  /** `keepAliveTimeout` for HTTP/1 responses (0 on h2, where Node handles it). */
  #keepAlive = 0;
  #closing: Promise<void> | null = null;

  constructor(options: ServerOptions = {}) {
    super();
    checkInt('bodyLimit', options.bodyLimit, 0);
    checkInt('maxHeaderSize', options.maxHeaderSize, 1024);
    checkInt('maxHeadersCount', options.maxHeadersCount, 1);
    checkInt('headersTimeout', options.headersTimeout, 1);
    checkInt('requestTimeout', options.requestTimeout, 0);
    checkInt('keepAliveTimeout', options.keepAliveTimeout, 0);
    checkInt('socketTimeout', options.socketTimeout, 0);
    checkInt('maxRequestsPerSocket', options.maxRequestsPerSocket, 0);
    checkInt('connectionsCheckingInterval', options.connectionsCheckingInterval, 1);
    checkInt('handshakeTimeout', options.handshakeTimeout, 1);
    checkInt('connect.connectTimeout', options.connect?.connectTimeout, 1);
    checkInt('connect.idleTimeout', options.connect?.idleTimeout, 0);
    checkInt('connect.maxTunnels', options.connect?.maxTunnels, 1);
    checkInt('connect.maxTunnelsPerClient', options.connect?.maxTunnelsPerClient, 1);
    this.#options = options;
    this.#connect = options.connect;
    this.#bodyLimit = options.bodyLimit ?? SERVER_DEFAULTS.bodyLimit;
    if (options.http2 !== undefined && options.http2 !== false) {
      this.#h2 = new H2Transport(options, {
        request: this.#onRequest,
        checkContinue: this.#onCheckContinue,
        clientError: this.#onClientError,
        upgrade: this.#onUpgrade,
        connect: this.#onConnect,
        extendedConnect: this.#onExtendedConnect,
        violation: (err, socket) => this.emit('clientError', err, socket),
      });
      this.node = this.#h2.node;
      this.#listenEvents(options);
      return;
    }
    this.#h2 = undefined;
    this.#keepAlive = options.keepAliveTimeout ?? SERVER_DEFAULTS.keepAliveTimeout;
    const requestTimeout = options.requestTimeout ?? SERVER_DEFAULTS.requestTimeout;
    let headersTimeout = options.headersTimeout ?? SERVER_DEFAULTS.headersTimeout;
    // Node insists headersTimeout <= requestTimeout when the latter is enabled.
    if (requestTimeout > 0 && headersTimeout > requestTimeout) headersTimeout = requestTimeout;
    const smallest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
    const httpOptions: http.ServerOptions = {
      maxHeaderSize: options.maxHeaderSize ?? SERVER_DEFAULTS.maxHeaderSize,
      requestTimeout,
      headersTimeout,
      // Node's default check period is 30 s, far too coarse for a 10 s header deadline.
      connectionsCheckingInterval:
        options.connectionsCheckingInterval ?? Math.max(100, Math.min(1000, Math.floor(smallest / 4))),
      requireHostHeader: options.requireHostHeader ?? SERVER_DEFAULTS.requireHostHeader,
      noDelay: true,
    };
    const node = options.tls
      ? https.createServer({
          handshakeTimeout: options.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout,
          ...options.tls,
          ...httpOptions,
        })
      : http.createServer(httpOptions);
    node.maxHeadersCount = options.maxHeadersCount ?? SERVER_DEFAULTS.maxHeadersCount;
    node.maxRequestsPerSocket = options.maxRequestsPerSocket ?? SERVER_DEFAULTS.maxRequestsPerSocket;
    // Neither node.timeout nor Node's keep-alive timer: both cost timers per request (see
    // InactivitySweep). Node's keepAliveTimeout is 0 for the same reason; #dispatch puts the value
    // back on each response so Node still announces `Keep-Alive: timeout=N`.
    node.timeout = 0;
    node.keepAliveTimeout = 0;
    const socketTimeout = options.socketTimeout ?? SERVER_DEFAULTS.socketTimeout;
    if (socketTimeout > 0 || this.#keepAlive > 0) {
      const sweep = new InactivitySweep(socketTimeout, this.#keepAlive);
      this.#inactivity = sweep;
      // The socket the HTTP layer reads: the TLS socket for https, so it is the one upgrades hand over.
      node.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => sweep.add(socket));
    }
    node.on('request', this.#onRequest);
    node.on('checkContinue', this.#onCheckContinue);
    node.on('clientError', this.#onClientError);
    node.on('upgrade', this.#onUpgrade);
    node.on('connect', this.#onConnect);
    this.node = node;
    this.#listenEvents(options);
  }

  #listenEvents(options: ServerOptions): void {
    const node = this.node;
    node.on('listening', () => this.emit('listening'));
    node.on('close', () => this.emit('close'));
    if (options.tls) {
      node.on('tlsClientError', (err: Error, socket: Duplex) => {
        this.emit('tlsClientError', err, socket);
        socket.destroy();
      });
    }
  }

  // ---------------------------------------------------------------- routes

  /** Registers `handler` for one or more methods (`'*'` = any) on `pattern`. */
  route<Path extends string>(
    method: string | readonly string[],
    pattern: Path,
    handler: Handler<PathParams<Path>>,
    options?: RouteOptions,
  ): this {
    checkInt('bodyLimit', options?.bodyLimit, 0);
    const record: RouteRecord = {
      handler: handler as Handler,
      bodyLimit: options?.bodyLimit ?? this.#bodyLimit,
      serialize: options?.response === undefined ? undefined : compileSerializer(options.response),
    };
    for (const m of typeof method === 'string' ? [method] : method)
      this.#router.add(m.toUpperCase(), pattern, record);
    return this;
  }

  /** Registers `handler` for GET on `pattern`; HEAD runs it too (body omitted). */
  get<Path extends string>(pattern: Path, handler: Handler<PathParams<Path>>, options?: RouteOptions): this {
    return this.route('GET', pattern, handler, options);
  }
  /** Registers `handler` for POST on `pattern`. */
  post<Path extends string>(pattern: Path, handler: Handler<PathParams<Path>>, options?: RouteOptions): this {
    return this.route('POST', pattern, handler, options);
  }
  /** Registers `handler` for PUT on `pattern`. */
  put<Path extends string>(pattern: Path, handler: Handler<PathParams<Path>>, options?: RouteOptions): this {
    return this.route('PUT', pattern, handler, options);
  }
  /** Registers `handler` for PATCH on `pattern`. */
  patch<Path extends string>(
    pattern: Path,
    handler: Handler<PathParams<Path>>,
    options?: RouteOptions,
  ): this {
    return this.route('PATCH', pattern, handler, options);
  }
  /** Registers `handler` for DELETE on `pattern`. */
  delete<Path extends string>(
    pattern: Path,
    handler: Handler<PathParams<Path>>,
    options?: RouteOptions,
  ): this {
    return this.route('DELETE', pattern, handler, options);
  }
  /** Registers `handler` for OPTIONS on `pattern`. */
  options<Path extends string>(
    pattern: Path,
    handler: Handler<PathParams<Path>>,
    options?: RouteOptions,
  ): this {
    return this.route('OPTIONS', pattern, handler, options);
  }
  /** Any method. More specific method routes on the same pattern win. */
  all<Path extends string>(pattern: Path, handler: Handler<PathParams<Path>>, options?: RouteOptions): this {
    return this.route('*', pattern, handler, options);
  }

  /**
   * Hands upgrade requests (`Connection: upgrade`, e.g. WebSocket) for `pattern` to `handler`.
   * Other upgrade paths get 404 and non-GET upgrades 400, and the socket is closed.
   */
  upgrade<Path extends string>(pattern: Path, handler: UpgradeHandler): this {
    this.#upgrades.add('GET', pattern, handler);
    return this;
  }

  /**
   * Hands RFC 8441 extended CONNECT streams (HTTP/2 only, e.g. WebSockets from browsers that reuse
   * the page's connection) for `pattern` to `handler`. The h2 server advertises
   * `SETTINGS_ENABLE_CONNECT_PROTOCOL`; other paths get 404, and `:protocol` values your handler
   * does not want are its to refuse.
   */
  h2connect<Path extends string>(pattern: Path, handler: H2ConnectHandler): this {
    this.#h2connects.add('CONNECT', pattern, handler);
    return this;
  }

  /** Every registered (method, pattern). */
  routes(): readonly { method: string; pattern: string }[] {
    return this.#router.routes();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts listening; resolves with the bound address. Port 0 (the default) picks a free port. */
  listen(port?: number | ListenOptions, host?: string): Promise<AddressInfo> {
    const opts: ListenOptions = typeof port === 'object' ? port : { port: port ?? 0, host };
    if (this.#closing !== null) return Promise.reject(new ServerStateError('Server is closed'));
    if (this.node.listening) return Promise.reject(new ServerStateError('Server is already listening'));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.node.once('error', onError);
      this.node.listen({ port: opts.port ?? 0, host: opts.host, backlog: opts.backlog }, () => {
        this.node.off('error', onError);
        resolve(this.node.address() as AddressInfo);
      });
    });
  }

  /** The bound address, or null when not listening. */
  address(): AddressInfo | null {
    const addr = this.node.address();
    return addr !== null && typeof addr === 'object' ? addr : null;
  }

  get listening(): boolean {
    return this.node.listening;
  }

  /**
   * Graceful shutdown: stop accepting connections, close idle keep-alive connections, answer new
   * requests on open connections with `Connection: close`, let in-flight requests finish, and at
   * `deadline` destroy whatever is left (including upgraded and tunnelled sockets). Resolves once
   * every connection is gone. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    checkInt('deadline', options.deadline, 0);
    const deadline = options.deadline ?? 10_000;
    if (this.#h2 !== undefined) {
      this.#closing = this.#h2.close(deadline, () => {
        for (const socket of this.#detached) socket.destroy();
      });
      this.emit('closing');
      return this.#closing;
    }
    const node = this.node as http.Server;
    this.#closing = new Promise<void>((resolve) => {
      let sweep: NodeJS.Timeout | undefined;
      let force: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearInterval(sweep);
        clearTimeout(force);
        resolve();
      };
      if (!node.listening) {
        for (const socket of this.#detached) socket.destroy();
        node.closeAllConnections();
        done();
        return;
      }
      node.close(done);
      node.closeIdleConnections();
      // Connections whose last request just finished turn idle; pick them up promptly.
      sweep = setInterval(() => node.closeIdleConnections(), 50);
      force = setTimeout(() => {
        node.closeAllConnections();
        for (const socket of this.#detached) socket.destroy();
      }, deadline);
    });
    this.emit('closing');
    return this.#closing;
  }

  /** True once `close()` has been called. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  // ---------------------------------------------------------------- requests

  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.#dispatch(req, res, false);
  };

  readonly #onCheckContinue = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.#dispatch(req, res, true);
  };

  #dispatch(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): void {
    const url = req.url!;
    const method = req.method!;
    // What Node announces in `Keep-Alive: timeout=N` (its server-wide value is 0, see constructor).
    if (this.#keepAlive > 0) (res as KeepAliveResponse)._keepAliveTimeout = this.#keepAlive;
    if (this.#closing !== null) res.setHeader('connection', 'close');
    if (url.charCodeAt(0) !== 47 /* '/' */) {
      this.#nonOriginForm(req, res, url, expectContinue);
      return;
    }
    if (hasDuplicateHost(req.rawHeaders)) {
      res.setHeader('connection', 'close');
      sendError(res, new DuplicateHostError());
      return;
    }
    let queryStart = url.indexOf('?');
    let path = queryStart === -1 ? url : url.slice(0, queryStart);
    let match: ReturnType<Router<RouteRecord>['find']>;
    try {
      // Every later stage (router, hooks, ctx.path/url, serveStatic) sees this one canonical path.
      const canonical = normalizePath(path);
      if (canonical !== path) {
        req.url = queryStart === -1 ? canonical : canonical + url.slice(queryStart);
        if (queryStart !== -1) queryStart = canonical.length;
        path = canonical;
      }
      match = this.#router.find(method, path);
    } catch (err) {
      if (expectContinue) res.setHeader('connection', 'close');
      sendError(res, err);
      return;
    }
    if (match === null) {
      // The body of an Expect: 100-continue request is never coming (no 100 sent): close after.
      if (expectContinue) res.setHeader('connection', 'close');
      this.#noRoute(req, res, method, path, queryStart);
      return;
    }
    const route = match.value;
    if (!BODYLESS.has(method) || expectContinue) {
      // Refuse an announced oversized body before a single byte of it is read (or sent).
      if (announcedLength(req) > route.bodyLimit) {
        sendError(res, new BodyTooLargeError(route.bodyLimit));
        return;
      }
    }
    const ctx = new Context(req, res, match.params, path, queryStart, route.bodyLimit);
    if (this.#options.onRequest !== undefined) {
      this.#hooked(ctx, route, this.#options.onRequest, expectContinue);
      return;
    }
    if (expectContinue) res.writeContinue();
    let result: unknown;
    try {
      result = route.handler(ctx);
    } catch (err) {
      this.#fail(err, ctx);
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as Promise<unknown>).then === 'function'
    ) {
      (result as Promise<unknown>).then(
        (value) => this.#finish(ctx, value, route.serialize),
        (err: unknown) => this.#fail(err, ctx),
      );
      return;
    }
    try {
      send(res, result, route.serialize);
    } catch (err) {
      this.#fail(err, ctx);
    }
  }

  async #hooked(
    ctx: Context,
    route: RouteRecord,
    hook: (ctx: Context) => unknown,
    expectContinue: boolean,
  ): Promise<void> {
    let value: unknown;
    let waiting = expectContinue;
    // The route's schema describes what its handler returns, not a hook's early answer.
    let serialize: RouteRecord['serialize'];
    try {
      value = await hook(ctx);
      if (value === undefined && !ctx.res.headersSent && !ctx.res.writableEnded) {
        // The client waits for 100 Continue: only ask for the body once the hook let it through.
        if (waiting) ctx.res.writeContinue();
        waiting = false;
        serialize = route.serialize;
        value = await route.handler(ctx);
      }
    } catch (err) {
      if (waiting && !ctx.res.headersSent) ctx.res.setHeader('connection', 'close');
      this.#fail(err, ctx);
      return;
    }
    // A refusal without 100 Continue: the body may or may not follow, so do not reuse the connection.
    if (waiting && !ctx.res.headersSent) ctx.res.setHeader('connection', 'close');
    this.#finish(ctx, value, serialize);
  }

  #finish(ctx: Context, value: unknown, serialize?: RouteRecord['serialize']): void {
    try {
      send(ctx.res, value, serialize);
    } catch (err) {
      this.#fail(err, ctx);
    }
  }

  #fail(err: unknown, ctx: Context): void {
    if (!(err instanceof HttpError) || err.status >= 500) this.emit('requestError', err, ctx);
    const onError = this.#options.onError;
    if (onError !== undefined && !ctx.res.headersSent) {
      let value: unknown;
      try {
        value = onError(err, ctx);
      } catch (inner) {
        err = inner;
        value = undefined;
      }
      if (value !== undefined) {
        try {
          send(ctx.res, value);
          return;
        } catch (inner) {
          err = inner;
        }
      }
    }
    sendError(ctx.res, err);
  }

  #noRoute(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    path: string,
    queryStart: number,
  ): void {
    const allowed = this.#router.allowed(path);
    if (allowed.length > 0) {
      res.setHeader('allow', allowed.join(', '));
      if (method === 'OPTIONS') {
        res.statusCode = 204;
        res.end();
        return;
      }
      writeStatus(res, 405, 'ERR_HTTP_METHOD_NOT_ALLOWED', `Method ${method} is not allowed on ${path}`);
      return;
    }
    const notFound = this.#options.notFound;
    if (notFound !== undefined) {
      const ctx = new Context(req, res, {}, path, queryStart, this.#bodyLimit);
      try {
        const value = notFound(ctx);
        if (value instanceof Promise) {
          value.then(
            (v) => this.#finish(ctx, v),
            (err: unknown) => this.#fail(err, ctx),
          );
        } else send(res, value);
      } catch (err) {
        this.#fail(err, ctx);
      }
      return;
    }
    writeStatus(res, 404, 'ERR_HTTP_NOT_FOUND', `No route for ${method} ${path}`);
  }

  #nonOriginForm(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: string,
    expectContinue: boolean,
  ): void {
    if (url === '*' && req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.end();
      return;
    }
    // Absolute-form (RFC 9112 §3.2.2) is what a client sends to a proxy; serve it by its path.
    if (/^https?:\/\//i.test(url)) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {}
      if (parsed !== undefined) {
        req.url = parsed.pathname + parsed.search;
        this.#dispatch(req, res, expectContinue);
        return;
      }
    }
    res.setHeader('connection', 'close');
    sendError(res, new InvalidPathError('Request target must be a path'));
  }

  // ---------------------------------------------------------------- protocol edges

  readonly #onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    this.emit('clientError', err, socket);
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    // Never write a raw response into the middle of one Node is already sending.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    let status = 400;
    if (err.code === 'HPE_HEADER_OVERFLOW') status = 431;
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = 408;
    else if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') status = 413;
    endRaw(socket, status);
  };

  #track(socket: Duplex): void {
    // Long-lived by nature: the HTTP inactivity timer no longer applies (tunnels have their own).
    (socket as Socket).setTimeout?.(0);
    this.#inactivity?.release(socket as Socket);
    this.#detached.add(socket);
    socket.once('close', () => this.#detached.delete(socket));
  }

  readonly #onExtendedConnect = (req: http2.Http2ServerRequest, res: http.ServerResponse): void => {
    if (this.#closing !== null) {
      writeStatus(res, 503, 'ERR_HTTP_SERVER_STATE', 'Server is shutting down');
      return;
    }
    const url = req.url;
    const queryStart = url.indexOf('?');
    let match: ReturnType<Router<H2ConnectHandler>['find']>;
    try {
      match =
        url.charCodeAt(0) === 47
          ? this.#h2connects.find(
              'CONNECT',
              normalizePath(queryStart === -1 ? url : url.slice(0, queryStart)),
            )
          : null;
    } catch {
      match = null;
    }
    if (match === null) {
      writeStatus(res, 404, 'ERR_HTTP_NOT_FOUND', 'No extended CONNECT handler for this path');
      return;
    }
    const stream = req.stream;
    const fail = (err: unknown): void => {
      this.emit('upgradeError', err, req as unknown as http.IncomingMessage);
      if (!stream.destroyed && !stream.headersSent)
        writeStatus(res, 500, 'ERR_HTTP_INTERNAL', 'Internal Server Error');
      else if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    };
    try {
      const result = match.value(stream, req.headers, match.params);
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  readonly #onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', destroyOnError);
    if (this.#closing !== null) {
      endRaw(socket, 503);
      return;
    }
    const url = req.url!;
    const queryStart = url.indexOf('?');
    let path = queryStart === -1 ? url : url.slice(0, queryStart);
    if (
      req.method !== 'GET' ||
      typeof req.headers.upgrade !== 'string' ||
      url.charCodeAt(0) !== 47 ||
      hasDuplicateHost(req.rawHeaders)
    ) {
      endRaw(socket, 400);
      return;
    }
    let match: ReturnType<Router<UpgradeHandler>['find']>;
    try {
      const canonical = normalizePath(path);
      if (canonical !== path) {
        req.url = queryStart === -1 ? canonical : canonical + url.slice(queryStart);
        path = canonical;
      }
      match = this.#upgrades.find('GET', path);
    } catch {
      endRaw(socket, 400);
      return;
    }
    if (match === null) {
      endRaw(socket, 404);
      return;
    }
    this.#track(socket);
    const fail = (err: unknown): void => {
      this.emit('upgradeError', err, req);
      if (!socket.destroyed) endRaw(socket, 500);
    };
    try {
      const result = match.value(req, socket, head, match.params);
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  readonly #onConnect = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', destroyOnError);
    const policy = this.#connect;
    if (policy === undefined) {
      endRaw(socket, 405, '');
      return;
    }
    if (this.#closing !== null) {
      endRaw(socket, 503);
      return;
    }
    const target = hasDuplicateHost(req.rawHeaders) ? null : parseAuthority(req.url ?? '');
    if (target === null) {
      this.emit('tunnelError', new HttpError(400, 'Malformed CONNECT target'), null, req);
      endRaw(socket, 400);
      return;
    }
    // Counted from here until the client's socket closes: pending checks, connecting and open
    // tunnels alike, so a client cannot hold more sockets by keeping upstreams silent.
    const client = (socket as Socket).remoteAddress ?? '';
    const perClient = this.#tunnelsByClient.get(client) ?? 0;
    const maxTunnels = policy.maxTunnels ?? CONNECT_DEFAULTS.maxTunnels;
    const maxPerClient = policy.maxTunnelsPerClient ?? CONNECT_DEFAULTS.maxTunnelsPerClient;
    if (this.#tunnels >= maxTunnels || perClient >= maxPerClient) {
      const error =
        this.#tunnels >= maxTunnels
          ? new TooManyTunnelsError(503, maxTunnels)
          : new TooManyTunnelsError(429, maxPerClient);
      this.emit('tunnelError', error, target, req);
      endRaw(socket, error.status);
      return;
    }
    this.#tunnels++;
    this.#tunnelsByClient.set(client, perClient + 1);
    socket.once('close', () => {
      this.#tunnels--;
      const left = (this.#tunnelsByClient.get(client) ?? 1) - 1;
      if (left === 0) this.#tunnelsByClient.delete(client);
      else this.#tunnelsByClient.set(client, left);
    });
    const refuse = (): void => {
      this.emit(
        'tunnelError',
        new HttpError(403, `Tunnel to ${target.host}:${target.port} is not allowed`),
        target,
        req,
      );
      endRaw(socket, 403);
    };
    const allow = policy.allow ?? [];
    if (typeof allow === 'function') {
      let verdict: boolean | Promise<boolean>;
      try {
        verdict = allow(target, req);
      } catch {
        refuse();
        return;
      }
      Promise.resolve(verdict).then(
        (ok) => (ok === true ? this.#openTunnel(req, socket, head, target, policy) : refuse()),
        refuse,
      );
      return;
    }
    if (!allowedByList(allow, target)) {
      refuse();
      return;
    }
    this.#openTunnel(req, socket, head, target, policy);
  };

  #openTunnel(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: TunnelTarget,
    policy: ConnectOptions,
  ): void {
    if (socket.destroyed) return;
    this.#track(socket);
    const upstream: Socket = netConnect({ host: target.host, port: target.port });
    this.#track(upstream);
    let established = false;
    const connectTimer = setTimeout(() => {
      upstream.destroy();
      this.emit('tunnelError', new HttpError(504, 'Upstream connect timed out'), target, req);
      endRaw(socket, 504);
    }, policy.connectTimeout ?? CONNECT_DEFAULTS.connectTimeout);
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      established = true;
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      const idle = policy.idleTimeout ?? CONNECT_DEFAULTS.idleTimeout;
      if (idle > 0) {
        const onIdle = (): void => {
          upstream.destroy();
          socket.destroy();
        };
        upstream.setTimeout(idle, onIdle);
      }
      this.emit('tunnel', target, req);
    });
    upstream.on('error', (err) => {
      clearTimeout(connectTimer);
      if (!established) {
        this.emit('tunnelError', err, target, req);
        endRaw(socket, 502);
      } else socket.destroy();
    });
    upstream.once('close', () => {
      clearTimeout(connectTimer);
      if (established) socket.destroy();
    });
    socket.once('close', () => upstream.destroy());
  }
}

/** RFC 9112 §3.2: a request with more than one Host field must be answered with 400. */
function hasDuplicateHost(raw: string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** Parses a CONNECT authority-form target (`host:port`, `[v6]:port`); null when malformed. */
export function parseAuthority(authority: string): TunnelTarget | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(authority);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = m[1] ?? m[2]!.toLowerCase();
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host, port };
}

function allowedByList(list: readonly string[], target: TunnelTarget): boolean {
  for (const entry of list) {
    const cut = entry.lastIndexOf(':');
    if (cut === -1) continue;
    let host = entry.slice(0, cut).toLowerCase();
    const port = entry.slice(cut + 1);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    if (port !== '*' && Number(port) !== target.port) continue;
    if (host === target.host) return true;
    if (host.startsWith('*.') && target.host.endsWith(host.slice(1)) && isIP(target.host) === 0) return true;
  }
  return false;
}

/** Creates a server; pass `tls` for HTTPS. See `ServerOptions` for limits and their defaults. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options);
}
