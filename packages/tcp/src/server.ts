import { EventEmitter } from 'node:events';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Connection } from './connection.js';
import { InvalidOptionError, ServerStateError, TooManyConnectionsError } from './errors.js';
import {
  type CloseOptions,
  checkInt,
  type ListenOptions,
  MAX_TIMER,
  type ResolvedConnectionOptions,
  resolveConnectionOptions,
  type ServerOptions,
} from './options.js';

/** Events of a `Server`. */
export type ServerEvents<TDecoded, TEncodable> = {
  /** A new connection (also passed to the `onConnection` handler). */
  connection: [connection: Connection<TDecoded, TEncodable>];
  /**
   * A connection was refused because of `maxConnections`. The raw socket is ended right after the
   * listeners run, so a listener may still `socket.write()` a short "server full" notice.
   */
  rejected: [error: TooManyConnectionsError, socket: Socket];
  /** Any connection's error (socket, protocol, idle timeout, or the handler threw). Emitted only if listened. */
  connectionError: [error: Error, connection: Connection<TDecoded, TEncodable>];
  /** TLS handshake failure of a client that never became a connection. Emitted only if listened. */
  tlsClientError: [error: Error, socket: Socket];
  /** Server-level error after listening started (e.g. accept failures). Emitted only if listened. */
  error: [error: Error];
  /** `close()` was called: no new connections; the existing ones get until the deadline. */
  closing: [];
  /** Fully closed: listener closed and every connection gone. */
  close: [];
};

/** Handler for each new connection. If it throws or rejects, only that connection is closed. */
export type ConnectionHandler<TDecoded, TEncodable> = (
  connection: Connection<TDecoded, TEncodable>,
) => unknown;

type ServerState = 'idle' | 'listening' | 'closing' | 'closed';

const REJECT_LINGER_MS = 1_000;

/**
 * A TCP, TLS or Unix-socket server whose connections speak a codec. Created by `createServer`.
 */
export class Server<TDecoded = unknown, TEncodable = unknown> extends EventEmitter<
  ServerEvents<TDecoded, TEncodable>
> {
  /** The underlying `net.Server` (or `tls.Server`). */
  readonly raw: NetServer | TlsServer;
  readonly #options: ServerOptions<TDecoded, TEncodable>;
  readonly #connectionOptions: ResolvedConnectionOptions;
  readonly #maxConnections: number;
  readonly #handler: ConnectionHandler<TDecoded, TEncodable> | undefined;
  readonly #connections = new Set<Connection<TDecoded, TEncodable>>();
  #state: ServerState = 'idle';
  #closing: Promise<void> | undefined;
  #onConnectionClosed: (() => void) | undefined;

  constructor(
    options: ServerOptions<TDecoded, TEncodable>,
    onConnection?: ConnectionHandler<TDecoded, TEncodable>,
  ) {
    super();
    if (onConnection !== undefined && typeof onConnection !== 'function') {
      throw new InvalidOptionError('onConnection', 'expected a function');
    }
    this.#options = options;
    this.#connectionOptions = resolveConnectionOptions(options, 120_000);
    this.#maxConnections = checkInt('maxConnections', options.maxConnections ?? 10_000, 1);
    this.#handler = onConnection;
    const allowHalfOpen = this.#connectionOptions.allowHalfOpen;
    if (options.tls !== undefined) {
      const handshakeTimeout = checkInt('handshakeTimeout', options.handshakeTimeout ?? 10_000, 1, MAX_TIMER);
      // Socket-level half-open follows the option: with it off, Node closes sockets whose peer
      // hangs up mid-handshake instead of keeping them until the handshake timeout.
      const server = createTlsServer({ ...options.tls, allowHalfOpen, handshakeTimeout });
      server.on('secureConnection', (socket) => this.#accept(socket));
      server.on('tlsClientError', (error, socket) => {
        if (this.listenerCount('tlsClientError') > 0) this.emit('tlsClientError', error, socket);
        socket.destroy();
      });
      this.raw = server;
    } else {
      const server = createNetServer({ allowHalfOpen });
      server.on('connection', (socket) => this.#accept(socket));
      this.raw = server;
    }
    this.raw.on('error', (error) => {
      if (this.#state === 'listening' && this.listenerCount('error') > 0) this.emit('error', error);
    });
  }

  /** Open connections. */
  get connections(): ReadonlySet<Connection<TDecoded, TEncodable>> {
    return this.#connections;
  }

  get listening(): boolean {
    return this.raw.listening;
  }

  /** The bound address: `AddressInfo` for TCP, the path for Unix sockets, null before `listen`. */
  address(): AddressInfo | string | null {
    return this.raw.address();
  }

  /**
   * Start listening. Resolves with the bound address (use `port: 0` for a free port and read
   * `.port` from the result); rejects with e.g. EADDRINUSE.
   */
  listen(options: ListenOptions & { path: string }): Promise<string>;
  listen(options?: Omit<ListenOptions, 'path'> | number): Promise<AddressInfo>;
  listen(options: ListenOptions | number = {}): Promise<AddressInfo | string> {
    if (this.#state !== 'idle') {
      return Promise.reject(new ServerStateError(`cannot listen: server is ${this.#state}`));
    }
    const listenOptions = typeof options === 'number' ? { port: options } : options;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        this.raw.off('listening', onListening);
        reject(error);
      };
      const onListening = (): void => {
        this.raw.off('error', onError);
        this.#state = 'listening';
        resolve(this.raw.address() as AddressInfo | string);
      };
      this.raw.once('error', onError);
      this.raw.once('listening', onListening);
      if (listenOptions.path !== undefined) {
        this.raw.listen({ path: listenOptions.path, backlog: listenOptions.backlog });
      } else {
        this.raw.listen({
          port: listenOptions.port ?? 0,
          host: listenOptions.host,
          backlog: listenOptions.backlog,
          ipv6Only: listenOptions.ipv6Only,
        });
      }
    });
  }

  /**
   * Send one message to every open connection (optionally filtered). Connections whose buffers are
   * full or that are closing are skipped; returns how many accepted the message. Never throws for a
   * single bad connection.
   */
  broadcast(message: TEncodable, filter?: (connection: Connection<TDecoded, TEncodable>) => boolean): number {
    let sent = 0;
    for (const connection of this.#connections) {
      if (connection.state !== 'open' || (filter !== undefined && !filter(connection))) continue;
      try {
        connection.write(message);
        sent++;
      } catch {
        // A slow or closing receiver must not stop the broadcast; its own send errors are its own.
      }
    }
    return sent;
  }

  /**
   * Graceful shutdown: stop accepting at once, give open connections until `deadline` ms to finish,
   * then `end()` the rest (flush + FIN; destroyed after their `closeTimeout`). Resolves when every
   * connection is closed and the listener is released. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const deadline = checkInt('deadline', options.deadline ?? 10_000, 0, MAX_TIMER);
    const wasListening = this.#state === 'listening';
    this.#state = 'closing';
    this.emit('closing');
    this.#closing = new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let listenerClosed = !wasListening;
      const endAll = (): void => {
        for (const connection of this.#connections) void connection.end();
      };
      // The listener may report 'close' a tick before the last connection does, so wait for both.
      const check = (): void => {
        if (!listenerClosed || this.#connections.size > 0 || this.#state === 'closed') return;
        if (timer !== undefined) clearTimeout(timer);
        this.#state = 'closed';
        this.#onConnectionClosed = undefined;
        resolve();
        this.emit('close');
      };
      this.#onConnectionClosed = check;
      if (deadline === 0) endAll();
      else if (this.#connections.size > 0) timer = setTimeout(endAll, deadline);
      if (wasListening) {
        this.raw.close(() => {
          listenerClosed = true;
          check();
        });
      } else check();
    });
    return this.#closing;
  }

  #accept(socket: Socket): void {
    if (this.#state !== 'listening') {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.#maxConnections) {
      const error = new TooManyConnectionsError(this.#maxConnections);
      socket.on('error', () => {});
      try {
        if (this.listenerCount('rejected') > 0) this.emit('rejected', error, socket);
      } catch {
        // A throwing listener must not take the accept loop (and the process) down.
      }
      socket.end();
      setTimeout(() => socket.destroy(), REJECT_LINGER_MS).unref();
      return;
    }
    let connection: Connection<TDecoded, TEncodable>;
    try {
      connection = new Connection<TDecoded, TEncodable>(
        socket,
        this.#options.codec(),
        this.#connectionOptions,
      );
    } catch (error) {
      // A codec factory that throws is a bug in the application, not a reason to crash the server.
      socket.destroy();
      if (this.listenerCount('error') > 0)
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#connections.add(connection);
    connection.on('close', () => {
      this.#connections.delete(connection);
      this.#onConnectionClosed?.();
    });
    connection.on('error', (error) => {
      if (this.listenerCount('connectionError') > 0) this.emit('connectionError', error, connection);
    });
    const handler = this.#handler;
    try {
      this.emit('connection', connection);
      if (handler === undefined) return;
      const result = handler(connection);
      if (isThenable(result))
        result.then(undefined, (error: unknown) => this.#handlerFailed(connection, error));
    } catch (error) {
      this.#handlerFailed(connection, error);
    }
  }

  #handlerFailed(connection: Connection<TDecoded, TEncodable>, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    // A `for await` loop rethrows the connection's own failure, which was already reported.
    if (err === connection.error) return;
    if (this.listenerCount('connectionError') > 0) this.emit('connectionError', err, connection);
    connection.destroy(err);
  }
}

/**
 * Create a server. `options.codec` frames every connection; `onConnection` runs for each one.
 * Call `listen()` to start accepting.
 *
 * @example
 * const server = createServer({ codec: lines() }, (conn) => {
 *   conn.on('message', (line) => conn.send(line.toUpperCase()));
 * });
 * const { port } = await server.listen({ port: 8124 });
 */
export function createServer<TDecoded, TEncodable>(
  options: ServerOptions<TDecoded, TEncodable>,
  onConnection?: ConnectionHandler<TDecoded, TEncodable>,
): Server<TDecoded, TEncodable> {
  return new Server(options, onConnection);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
