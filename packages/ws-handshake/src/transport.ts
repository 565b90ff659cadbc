import type { Duplex } from 'node:stream';

/**
 * How the WebSocket arrived: `'http/1.1'` (an Upgrade on a TCP or TLS socket) or `'h2'` (an
 * RFC 8441 extended CONNECT stream). Frames, limits, closing, topics and diagnostics are the
 * same over both; only the socket-level calls below differ.
 */
export type TransportName = 'http/1.1' | 'h2';

/**
 * The socket calls a connection makes when its stream offers them. Any `Duplex` works: a
 * `net.Socket`/`tls.TLSSocket` has all of them, an HTTP/2 stream has none of its own (its
 * session's socket carries the address).
 */
interface SocketLike {
  setNoDelay?: (noDelay?: boolean) => unknown;
  setTimeout?: (ms: number) => unknown;
  remoteAddress?: string;
  remotePort?: number;
  session?: { socket?: { remoteAddress?: string; remotePort?: number } };
}

/** Tune the stream for a WebSocket: no Nagle delay (small frames), no idle timeout (heartbeat does that). */
export function prepareStream(stream: Duplex): void {
  const s = stream as Duplex & SocketLike;
  if (typeof s.setNoDelay === 'function') s.setNoDelay(true);
  if (typeof s.setTimeout === 'function') s.setTimeout(0);
}

export function remoteAddressOf(stream: Duplex): string | undefined {
  const s = stream as Duplex & SocketLike;
  return s.remoteAddress ?? s.session?.socket?.remoteAddress;
}

export function remotePortOf(stream: Duplex): number | undefined {
  const s = stream as Duplex & SocketLike;
  return s.remotePort ?? s.session?.socket?.remotePort;
}
