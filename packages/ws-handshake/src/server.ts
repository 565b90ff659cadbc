import { EventEmitter } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type HandshakeMessage, handshakeChannel } from './diagnostics.js';
import { HandshakeTimeoutError } from './errors.js';
import { acceptDeflateOffer, validateDeflateOptions } from './extension.js';
import { buildAcceptResponse, buildRejectResponse, validateUpgradeRequest } from './handshake.js';
import {
  type AuthorizeResult,
  type CreateServerOptions,
  DEFAULT_DEFLATE_THRESHOLD,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_SERVER_HEARTBEAT,
  type PerMessageDeflateOptions,
  type ServerOptions,
  type WebSocketServerOptions,
} from './options.js';
import { PerMessageDeflate } from './permessage-deflate.js';
import type { SendData } from './outbound.js';
import { PreparedMessage } from './prepared.js';
import { TopicRegistry } from './topics.js';
import { remoteAddressOf } from './transport.js';
import { WebSocket } from './websocket.js';

interface ResolvedServerOptions {
  options: ServerOptions;
  deflate: PerMessageDeflateOptions | null;
  path: string | undefined;
  origins: ((origin: string, req: IncomingMessage) => boolean) | null;
}

function resolveOptions(options: WebSocketServerOptions): ResolvedServerOptions {
  let deflate: PerMessageDeflateOptions | null = null;
  if (options.perMessageDeflate !== undefined && options.perMessageDeflate !== false) {
    deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate;
    validateDeflateOptions(deflate);
  }
  let origins: ResolvedServerOptions['origins'] = null;
  const allowed = options.allowedOrigins;
  if (typeof allowed === 'function') {
    origins = allowed;
  } else if (allowed !== undefined) {
    const set = new Set(allowed.map((o) => o.toLowerCase()));
    origins = (origin) => set.has(origin.toLowerCase());
  }
  return { options, deflate, path: options.path, origins };
}

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

async function runAuthorize(
  authorize: NonNullable<ServerOptions['authorize']>,
  req: IncomingMessage,
  timeout: number,
): Promise<AuthorizeResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(() => authorize(req)),
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new HandshakeTimeoutError(timeout)), timeout);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function pathnameOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
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
    if (resolved.path !== undefined && pathnameOf(req.url) !== resolved.path) {
      return reject(socket, 404, 'Not Found');
    }
    if (resolved.origins !== null) {
      const origin = req.headers.origin;
      if (origin === undefined ? options.requireOrigin === true : !resolved.origins(origin, req)) {
        return reject(socket, 403, 'Origin not allowed');
      }
    }
    if (options.authorize !== undefined) {
      let result: AuthorizeResult;
      try {
        result = await runAuthorize(
          options.authorize,
          req,
          options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
        );
      } catch (error) {
        if (error instanceof HandshakeTimeoutError) return reject(socket, 503, 'Authorization timed out');
        return reject(socket, 500, 'Authorization failed');
      }
      if (result === false) return reject(socket, 401, 'Unauthorized');
      if (typeof result === 'object' && result !== null) {
        const status =
          Number.isInteger(result.status) && result.status >= 400 && result.status <= 599
            ? result.status
            : 403;
        return reject(socket, status, result.body ?? http.STATUS_CODES[status] ?? 'Rejected', result.headers);
      }
      if (socket.destroyed || !socket.writable) {
        socket.destroy();
        return null;
      }
    }

    let protocol: string | undefined;
    if (v.protocols.length > 0) {
      if (options.handleProtocols !== undefined) {
        const chosen = options.handleProtocols(v.protocols, req);
        if (typeof chosen === 'string' && v.protocols.includes(chosen)) protocol = chosen;
      } else if (options.protocols !== undefined) {
        protocol = v.protocols.find((p) => options.protocols!.includes(p));
      } else {
        protocol = v.protocols[0];
      }
    }

    let deflate: PerMessageDeflate | null = null;
    let extensions: string | undefined;
    if (resolved.deflate !== null && v.extensions.length > 0) {
      const accepted = acceptDeflateOffer(v.extensions, resolved.deflate);
      if (accepted !== null) {
        extensions = accepted.response;
        deflate = new PerMessageDeflate(
          accepted.params,
          true,
          options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
          resolved.deflate.level,
          resolved.deflate.memLevel,
        );
      }
    }

    let response: string;
    try {
      response = buildAcceptResponse(v.key, protocol, extensions, options.headers);
    } catch {
      return reject(socket, 500, 'Invalid response headers');
    }
    socket.write(response);
    return new WebSocket(
      socket,
      head,
      {
        isServer: true,
        url: req.url ?? '/',
        protocol: protocol ?? '',
        extensions: extensions ?? '',
        deflate,
        deflateThreshold: resolved.deflate?.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
        heartbeatInterval: options.heartbeatInterval ?? DEFAULT_SERVER_HEARTBEAT,
        transport: 'http/1.1',
        topics,
      },
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

export interface WebSocketServerEvents {
  connection: [ws: WebSocket, req: IncomingMessage];
  close: [];
}

/**
 * Tracks connections accepted through it, offers broadcast and orderly shutdown. Attach it to
 * an existing HTTP server with `attach()` or call `handleUpgrade()` yourself; or let
 * `createWebSocketServer()` create and own the HTTP server.
 */
export class WebSocketServer extends EventEmitter<WebSocketServerEvents> {
  /** Open connections. */
  readonly clients = new Set<WebSocket>();
  /** The HTTP(S) server, when created by `createWebSocketServer()`. */
  httpServer: http.Server | https.Server | null = null;
  private readonly resolved: ResolvedServerOptions;
  private readonly registry = new TopicRegistry();
  private closing = false;

  constructor(options: WebSocketServerOptions = {}) {
    super();
    this.resolved = resolveOptions(options);
  }

  /** Complete an upgrade; on success the connection is tracked and `connection` is emitted. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<WebSocket | null> {
    const ws = await performUpgrade(
      req,
      socket,
      head,
      this.resolved,
      this.closing ? 'Server is shutting down' : null,
      this.registry,
    );
    if (ws === null) return null;
    if (this.closing) {
      // The server started shutting down while this handshake (e.g. authorize) was running.
      ws.close(1001, 'Server shutting down').catch(() => {});
      return null;
    }
    if (ws.readyState !== WebSocket.CLOSED) {
      this.clients.add(ws);
      ws._owner = this.clients;
    }
    this.emit('connection', ws, req);
    return ws;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.handleUpgrade(req, socket, head).catch(() => socket.destroy());
  };

  /** Handle every `upgrade` event of `server`. */
  attach(server: http.Server | https.Server): this {
    server.on('upgrade', this.onUpgrade);
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

  /** `ws://host:port` of the owned HTTP server. */
  get url(): string | undefined {
    const addr = this.httpServer?.address() as AddressInfo | null | undefined;
    if (addr === null || addr === undefined) return undefined;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${this.httpServer instanceof https.Server ? 'wss' : 'ws'}://${host}:${addr.port}`;
  }

  /** Port of the owned HTTP server. */
  get port(): number | undefined {
    const addr = this.httpServer?.address() as AddressInfo | null | undefined;
    return addr?.port;
  }

  /**
   * Refuse new upgrades (503), close every client with `code` (default 1001 Going Away), wait
   * for them (each bounded by its `closeTimeout`), then close the owned HTTP server.
   */
  async close(code = 1001, reason = 'Server shutting down'): Promise<void> {
    this.closing = true;
    const waits: Promise<void>[] = [];
    for (const ws of this.clients) waits.push(ws.close(code, reason).catch(() => {}));
    await Promise.all(waits);
    const server = this.httpServer;
    if (server !== null) {
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
 * listening; `server.url` then tells where.
 */
export async function createWebSocketServer(options: CreateServerOptions = {}): Promise<WebSocketServer> {
  const wss = new WebSocketServer(options);
  const onRequest = (_req: IncomingMessage, res: http.ServerResponse): void => {
    const body = 'This endpoint speaks WebSocket only.\n';
    res.writeHead(426, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      Upgrade: 'websocket',
      Connection: 'Upgrade, close',
      'Sec-WebSocket-Version': '13',
    });
    res.end(body);
  };
  const server =
    options.tls !== undefined ? https.createServer(options.tls, onRequest) : http.createServer(onRequest);
  wss.httpServer = server;
  wss.attach(server);
  await new Promise<void>((resolve, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.removeListener('error', fail);
      resolve();
    });
  });
  return wss;
}
