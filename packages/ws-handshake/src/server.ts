import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type http2 from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { negotiate, type ResolvedServerOptions, resolveOptions, serverSetup } from './accept-policy.js';
import { type HandshakeMessage, handshakeChannel } from './diagnostics.js';
import { InvalidArgumentError } from './errors.js';
import { type H2RequestHeaders, isWebSocketConnect } from './h2-handshake.js';
import { h2RequestOf, performH2Upgrade, releaseH2Request } from './h2-upgrade.js';
import { buildAcceptResponse, buildRejectResponse, validateUpgradeRequest } from './handshake.js';
import type { CreateServerOptions, ServerOptions, WebSocketServerOptions } from './options.js';
import { createOwnedServer } from './owned-server.js';
import type { SendData } from './outbound.js';
import { PreparedMessage } from './prepared.js';
import { TopicRegistry } from './topics.js';
import { remoteAddressOf } from './transport.js';
import { WebSocket } from './websocket.js';

/** Refusal of the request being handled, for `net:ws:handshake` (one upgrade runs to completion per socket). */
const refusals = new WeakMap<Duplex, { status: number; reason: string }>();

function reject(socket: Duplex, status: number, message: string, headers?: Record<string, string>): null {
  if (handshakeChannel.hasSubscribers) refusals.set(socket, { status, reason: message });
  if (socket.writable && !socket.destroyed) {
    socket.once('finish', () => socket.destroy());
    socket.end(buildRejectResponse(status, message, headers));
  } else {
    socket.destroy();
  }
  return null;
}

async function performUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  resolved: ResolvedServerOptions,
  refuse: string | null,
  topics: TopicRegistry | null = null,
): Promise<WebSocket | null> {
  if (!handshakeChannel.hasSubscribers) return upgrade(req, socket, head, resolved, refuse, topics);
  const start = performance.now();
  let ws: WebSocket | null = null;
  let failure: unknown;
  try {
    ws = await upgrade(req, socket, head, resolved, refuse, topics);
    return ws;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    const refusal = refusals.get(socket);
    refusals.delete(socket);
    handshakeChannel.publish({
      side: 'server',
      outcome: ws !== null ? 'accepted' : refusal !== undefined ? 'rejected' : 'failed',
      status: ws !== null ? 101 : refusal?.status,
      durationMs: performance.now() - start,
      url: req.url ?? '/',
      remoteAddress: remoteAddressOf(socket),
      reason:
        ws !== null
          ? undefined
          : (refusal?.reason ??
            (failure instanceof Error ? failure.message : 'Socket closed during the handshake')),
      ws: ws ?? undefined,
      transport: 'http/1.1',
    } satisfies HandshakeMessage);
  }
}

async function upgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  resolved: ResolvedServerOptions,
  refuse: string | null,
  topics: TopicRegistry | null,
): Promise<WebSocket | null> {
  const { options } = resolved;
  // Hold incoming bytes while the handshake (maybe an async authorize) runs.
  socket.pause();
  const onError = (): void => {
    socket.destroy();
  };
  socket.on('error', onError);
  try {
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return null;
    }
    if (refuse !== null) return reject(socket, 503, refuse);
    const v = validateUpgradeRequest(req);
    if (!v.ok) return reject(socket, v.status, v.message, v.headers);
    const decision = await negotiate(req, v, resolved, () => socket.destroyed || !socket.writable);
    if (decision === null) {
      socket.destroy();
      return null;
    }
    if (decision.refused) return reject(socket, decision.status, decision.message, decision.headers);
    let response: string;
    try {
      response = buildAcceptResponse(v.key, decision.protocol, decision.extensions, options.headers);
    } catch {
      return reject(socket, 500, 'Invalid response headers');
    }
    socket.write(response);
    return new WebSocket(
      socket,
      head,
      serverSetup(req.url ?? '/', decision, resolved, 'http/1.1', topics),
      options,
    );
  } finally {
    socket.removeListener('error', onError);
  }
}

/**
 * Complete (or refuse) a WebSocket upgrade from any Node HTTP server's `upgrade` event.
 * Resolves with the open connection, or `null` when the request was rejected (the HTTP error
 * response has then already been written and the socket closed).
 *
 * ```ts
 * server.on('upgrade', async (req, socket, head) => {
 *   const ws = await handleUpgrade(req, socket, head, { allowedOrigins: ['https://app.example'] });
 *   ws?.on('message', (data) => ws.send(data));
 * });
 * ```
 */
export function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: ServerOptions = {},
): Promise<WebSocket | null> {
  return performUpgrade(req, socket, head, resolveOptions(options), null, null);
}

/** Events of a {@link WebSocketServer}. */
export interface WebSocketServerEvents {
  connection: [ws: WebSocket, req: IncomingMessage];
  /** The HTTP server (owned with `port`, or given with `server`) is listening. */
  listening: [];
  /** The owned HTTP server failed (e.g. `EADDRINUSE` with `port`). */
  error: [error: Error];
  close: [];
}

/** Called by `handleUpgrade(req, socket, head, callback)` instead of emitting `connection`, as in `ws`. */
export type UpgradeCallback = (ws: WebSocket, req: IncomingMessage) => void;

/**
 * Tracks connections accepted through it, offers broadcast and orderly shutdown. As in `ws` 8:
 * `{ port }` creates and owns an HTTP server, `{ server }` handles an existing server's upgrades,
 * `{ noServer: true }` (the default) leaves `handleUpgrade()` to you. `attach()` adds servers later;
 * `createWebSocketServer()` is the promise-returning way to get a listening one.
 */
export class WebSocketServer extends EventEmitter<WebSocketServerEvents> {
  /** Open connections. */
  readonly clients = new Set<WebSocket>();
  /** The HTTP(S) server this instance created and owns (`port` option or `createWebSocketServer()`). */
  httpServer: http.Server | https.Server | null = null;
  private readonly resolved: ResolvedServerOptions;
  private readonly registry = new TopicRegistry();
  private closing = false;
  /** Servers whose `upgrade` events we listen to (the owned one, `server`, `attach()`). */
  private readonly attached = new Set<http.Server | https.Server>();
  /** node:http2 servers whose extended CONNECT streams we accept (`attachH2()`). */
  private readonly attachedH2 = new Set<http2.Http2SecureServer | http2.Http2Server>();

  /**
   * `callback` runs once the owned server listens (`port`), like a `listening` listener.
   * Throws `InvalidArgumentError` when more than one of `port`, `server`, `noServer` is set.
   */
  constructor(options: WebSocketServerOptions = {}, callback?: () => void) {
    super();
    const modes =
      Number(options.port !== undefined && options.port !== null) +
      Number(options.server !== undefined && options.server !== null) +
      Number(options.noServer === true);
    if (modes > 1) {
      throw new InvalidArgumentError('At most one of the "port", "server" and "noServer" options may be set');
    }
    this.resolved = resolveOptions(options);
    if (callback !== undefined) this.once('listening', callback);
    if (options.port !== undefined && options.port !== null) {
      const server = createOwnedServer(options.tls);
      this.httpServer = server;
      this.attach(server);
      server.on('error', this.onServerError);
      server.listen(options.port, options.host, options.backlog);
    } else if (options.server !== undefined && options.server !== null) {
      this.attach(options.server);
    }
  }

  private readonly onListening = (): void => {
    this.emit('listening');
  };

  private readonly onServerError = (error: Error): void => {
    this.emit('error', error);
  };

  /**
   * The address the HTTP server listens on (`server.address()`), or `null` before it listens.
   * Throws `InvalidArgumentError` in `noServer` mode, as `ws` does.
   */
  address(): AddressInfo | string | null {
    const server = this.httpServer ?? this.attached.values().next().value;
    if (server === undefined) throw new InvalidArgumentError('The server is operating in "noServer" mode');
    return server.address();
  }

  /**
   * Complete an upgrade; on success the connection is tracked. Without `callback` the
   * `connection` event is emitted; with one (the `ws` signature) `callback(ws, req)` is called
   * instead and emitting `connection` is left to it, as in `ws`.
   */
  async handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    callback?: UpgradeCallback,
  ): Promise<WebSocket | null> {
    const ws = await performUpgrade(
      req,
      socket,
      head,
      this.resolved,
      this.closing ? 'Server is shutting down' : null,
      this.registry,
    );
    if (ws === null) return null;
    return this.adopt(ws, req, callback);
  }

  /**
   * Complete an RFC 8441 WebSocket from an HTTP/2 stream (`stream` event of a `node:http2` server
   * created with `settings: { enableConnectProtocol: true }`): same policy, tracking, topics and
   * `connection` event as `handleUpgrade()`; `req` is then an `H2UpgradeRequest` view.
   */
  async handleH2Stream(
    stream: ServerHttp2Stream,
    headers: H2RequestHeaders,
    callback?: UpgradeCallback,
  ): Promise<WebSocket | null> {
    try {
      const ws = await performH2Upgrade(
        stream,
        headers,
        this.resolved,
        this.closing ? 'Server is shutting down' : null,
        this.registry,
      );
      if (ws === null) return null;
      return this.adopt(ws, h2RequestOf(stream, headers), callback);
    } finally {
      releaseH2Request(stream);
    }
  }

  private adopt(
    ws: WebSocket,
    req: IncomingMessage,
    callback: UpgradeCallback | undefined,
  ): WebSocket | null {
    if (this.closing) {
      // The server started shutting down while this handshake (e.g. authorize) was running.
      ws.close(1001, 'Server shutting down').catch(() => {});
      return null;
    }
    if (ws.readyState !== WebSocket.CLOSED) {
      this.clients.add(ws);
      ws._owner = this.clients;
    }
    if (callback !== undefined) callback(ws, req);
    else this.emit('connection', ws, req);
    return ws;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.handleUpgrade(req, socket, head).catch(() => socket.destroy());
  };

  /** Handle every `upgrade` event of `server` (and forward its `listening` event). */
  attach(server: http.Server | https.Server): this {
    if (this.attached.has(server)) return this;
    this.attached.add(server);
    server.on('upgrade', this.onUpgrade);
    server.on('listening', this.onListening);
    return this;
  }

  private readonly onStream = (stream: ServerHttp2Stream, headers: H2RequestHeaders): void => {
    if (!isWebSocketConnect(headers)) return;
    this.handleH2Stream(stream, headers).catch(() => stream.destroy());
  };

  /**
   * node:http2's compatibility layer (a `request` listener) answers every CONNECT itself with 405
   * unless someone listens to `connect`; this listener keeps it away from WebSocket CONNECTs and
   * leaves the 405 to other CONNECTs when nobody else listens.
   */
  private readonly onCompatConnect = (
    req: http2.Http2ServerRequest,
    res: http2.Http2ServerResponse,
  ): void => {
    if (isWebSocketConnect(req.headers)) return;
    const server = this.attachedH2.values().next().value;
    if (server !== undefined && server.listenerCount('connect') > 1) return;
    res.statusCode = 405;
    res.end();
  };

  /**
   * Accept RFC 8441 WebSockets on every `stream` of a `node:http2` server (or one session) created
   * with `settings: { enableConnectProtocol: true }`. Only CONNECT streams with `:protocol
   * websocket` are taken; other streams are left to the server's own handlers.
   */
  attachH2(server: http2.Http2SecureServer | http2.Http2Server): this {
    if (this.attachedH2.has(server)) return this;
    this.attachedH2.add(server);
    server.on('stream', this.onStream);
    server.on('connect', this.onCompatConnect);
    return this;
  }

  /**
   * Send one message to every open client (or those passing `filter`). The frame is built once
   * and shared; connections compressing this message encode their own. Returns how many
   * clients it was sent to.
   */
  broadcast(data: SendData, options?: { binary?: boolean; filter?: (ws: WebSocket) => boolean }): number {
    const message = new PreparedMessage(data, options?.binary);
    let n = 0;
    for (const ws of this.clients) {
      if (options?.filter !== undefined && !options.filter(ws)) continue;
      if (ws._broadcast(message)) n++;
    }
    return n;
  }

  /**
   * Send `data` to every subscriber of `topic` (see `ws.subscribe()`). The frame is built once
   * (and compressed once for subscribers whose permessage-deflate has no context takeover);
   * each subscriber's `maxBufferedAmount` still applies. Returns how many it was queued for.
   */
  publish(topic: string, data: SendData, options?: { binary?: boolean }): number {
    return this.registry.publish(topic, data, options?.binary, null);
  }

  /** Number of connections subscribed to `topic`. */
  subscriberCount(topic: string): number {
    return this.registry.subscriberCount(topic);
  }

  private get listeningServer(): http.Server | https.Server | undefined {
    return this.httpServer ?? this.attached.values().next().value;
  }

  /** `ws://host:port` (or `wss:`) of the owned or given HTTP server, once it listens on TCP. */
  get url(): string | undefined {
    const server = this.listeningServer;
    const addr = server?.address();
    if (addr === null || addr === undefined || typeof addr === 'string') return undefined;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${server instanceof https.Server ? 'wss' : 'ws'}://${host}:${addr.port}`;
  }

  /** Port of the owned or given HTTP server. */
  get port(): number | undefined {
    const addr = this.listeningServer?.address();
    return addr === null || addr === undefined || typeof addr === 'string' ? undefined : addr.port;
  }

  /**
   * Refuse new upgrades (503), close every client with `code` (default 1001 Going Away), wait
   * for them (each bounded by its `closeTimeout`), stop listening to the `upgrade` events of
   * servers given with `server`/`attach()`, and close the owned HTTP server. `close(callback)`
   * (the `ws` form) uses the defaults and calls `callback` when done.
   */
  async close(code?: number | ((error?: Error) => void), reason = 'Server shutting down'): Promise<void> {
    if (typeof code === 'function') {
      const callback = code;
      return this.close().then(
        () => callback(),
        (error: Error) => callback(error),
      );
    }
    code ??= 1001;
    this.closing = true;
    for (const server of this.attached) {
      server.removeListener('upgrade', this.onUpgrade);
      server.removeListener('listening', this.onListening);
    }
    this.attached.clear();
    for (const server of this.attachedH2) {
      server.removeListener('stream', this.onStream);
      server.removeListener('connect', this.onCompatConnect);
    }
    this.attachedH2.clear();
    const waits: Promise<void>[] = [];
    for (const ws of this.clients) waits.push(ws.close(code, reason).catch(() => {}));
    await Promise.all(waits);
    const server = this.httpServer;
    if (server?.listening) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    this.emit('close');
  }
}

/**
 * Start an HTTP(S) server that only speaks WebSocket (plain requests get 426). Resolves once
 * listening; `server.url` then tells where. Rejects with the listen error (e.g. `EADDRINUSE`).
 */
export async function createWebSocketServer(options: CreateServerOptions = {}): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ ...options, port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  await new Promise<void>((resolve, fail) => {
    const onError = (error: Error): void => {
      wss.removeListener('listening', onListening);
      fail(error);
    };
    const onListening = (): void => {
      wss.removeListener('error', onError);
      resolve();
    };
    wss.once('error', onError);
    wss.once('listening', onListening);
  });
  return wss;
}
