import type { Socket } from 'node:net';

/**
 * Node keeps an idle keep-alive socket this much longer than the `Keep-Alive: timeout` it
 * announces, so a client reusing the connection at the last moment does not race the close.
 */
const KEEP_ALIVE_GRACE = 1000;

/**
 * `socketTimeout` and `keepAliveTimeout` for HTTP/1 connections, checked by one sweep instead of
 * timers per socket.
 *
 * Node arms a socket timer for each: `server.timeout` is re-armed on every read and write, and the
 * keep-alive timer is created when a response finishes and cleared when the next request arrives,
 * so a keep-alive request costs two new timers plus re-arms; on small requests that timer churn is
 * a measurable share of the server's CPU. Here a socket costs one map entry for its whole life, and
 * a periodic sweep compares the bytes it has moved (read plus written, queued writes included, as
 * Node counts them) with the last sweep. A socket that moved nothing for `socketTimeout` ms is
 * destroyed; one with no response in progress (idle between requests) after `keepAliveTimeout`
 * plus Node's grace second. Both are detected `check` ms late at most.
 */
export class InactivitySweep {
  readonly #timeout: number;
  readonly #keepAlive: number;
  readonly #check: number;
  /** socket → [bytes moved at the last sweep, when that count last changed]. */
  readonly #sockets = new Map<Socket, [number, number]>();
  #timer: NodeJS.Timeout | null = null;
  readonly #forget: (this: Socket) => void;

  /** Both in ms, 0 = off; at least one is on. */
  constructor(socketTimeout: number, keepAliveTimeout: number) {
    this.#timeout = socketTimeout > 0 ? socketTimeout : Number.POSITIVE_INFINITY;
    this.#keepAlive = keepAliveTimeout > 0 ? keepAliveTimeout + KEEP_ALIVE_GRACE : Number.POSITIVE_INFINITY;
    const shortest = Math.min(this.#timeout, this.#keepAlive);
    this.#check = Math.min(1000, Math.max(10, Math.floor(shortest / 4)));
    const sockets = this.#sockets;
    this.#forget = function forget(this: Socket) {
      sockets.delete(this);
    };
  }

  /** Watches `socket` until it closes or is `release`d. */
  add(socket: Socket): void {
    this.#sockets.set(socket, [moved(socket), performance.now()]);
    socket.once('close', this.#forget);
    if (this.#timer === null) {
      this.#timer = setInterval(this.#sweep, this.#check);
      this.#timer.unref();
    }
  }

  /** Stops watching `socket` (upgraded and tunnelled sockets live by their own rules). */
  release(socket: Socket): void {
    if (this.#sockets.delete(socket)) socket.off('close', this.#forget);
  }

  readonly #sweep = (): void => {
    const now = performance.now();
    for (const [socket, seen] of this.#sockets) {
      const bytes = moved(socket);
      if (bytes !== seen[0]) {
        seen[0] = bytes;
        seen[1] = now;
      } else {
        const idle = now - seen[1];
        if (
          idle >= this.#timeout ||
          // No response in progress: the connection waits for its next request.
          (idle >= this.#keepAlive && (socket as { _httpMessage?: unknown })._httpMessage == null)
        ) {
          this.#sockets.delete(socket);
          socket.destroy();
        }
      }
    }
    if (this.#sockets.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  };
}

function moved(socket: Socket): number {
  return socket.bytesRead + (socket.bytesWritten ?? 0);
}
