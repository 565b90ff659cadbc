import type { Socket } from 'node:net';

/**
 * `socketTimeout` for HTTP/1 connections, checked by one sweep instead of a timer per socket.
 *
 * Node's own `server.timeout` re-arms a socket timer on every read and write and swaps it for a new
 * one twice per request (around the keep-alive timer); on a small keep-alive request that timer
 * churn is a measurable share of the server's CPU. Here a socket costs one map entry for its whole
 * life, and a periodic sweep compares the bytes it has moved (read plus written, queued writes
 * included, as Node counts them) with the last sweep. A socket that moved nothing for `timeout` ms
 * is destroyed, `check` ms late at most.
 */
export class InactivitySweep {
  readonly #timeout: number;
  readonly #check: number;
  /** socket → [bytes moved at the last sweep, when that count last changed]. */
  readonly #sockets = new Map<Socket, [number, number]>();
  #timer: NodeJS.Timeout | null = null;
  readonly #forget: (this: Socket) => void;

  constructor(timeout: number) {
    this.#timeout = timeout;
    this.#check = Math.min(1000, Math.max(10, Math.floor(timeout / 4)));
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
      } else if (now - seen[1] >= this.#timeout) {
        this.#sockets.delete(socket);
        socket.destroy();
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
