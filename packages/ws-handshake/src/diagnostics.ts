import diagnostics from 'node:diagnostics_channel';
import type { WebSocketError } from './errors.js';
import type { TransportName } from './transport.js';
import type { WebSocket } from './websocket.js';

/*
 * node:diagnostics_channel events. Channels are looked up once; every publish is guarded by
 * `hasSubscribers`, so nothing is allocated on any path while nobody listens.
 */
export const handshakeChannel = diagnostics.channel('net:ws:handshake');
export const openChannel = diagnostics.channel('net:ws:open');
export const closeChannel = diagnostics.channel('net:ws:close');
export const errorChannel = diagnostics.channel('net:ws:error');
export const slowConsumerChannel = diagnostics.channel('net:ws:slow-consumer');

/** `net:ws:handshake`: one per opening handshake, server or client, whatever the outcome. */
export interface HandshakeMessage {
  side: 'server' | 'client';
  /** `'accepted'`, or `'rejected'` with the HTTP `status` sent (server) or received (client), or `'failed'` (socket, timeout, bad response). */
  outcome: 'accepted' | 'rejected' | 'failed';
  /** HTTP status: 101 when accepted (200 over HTTP/2); the refusal's status; undefined when none was exchanged. */
  status: number | undefined;
  /** Milliseconds from the request (server: the `upgrade` event; client: `connect()`) to the outcome. */
  durationMs: number;
  /** Request target (server) or URL (client). */
  url: string;
  remoteAddress: string | undefined;
  /** Why it was refused or failed, when known. */
  reason: string | undefined;
  /** The connection, when accepted. */
  ws: WebSocket | undefined;
  transport: TransportName;
}

/** `net:ws:open`: a connection is open (after the 101). */
export interface OpenMessage {
  ws: WebSocket;
  side: 'server' | 'client';
  url: string;
  protocol: string;
  extensions: string;
  remoteAddress: string | undefined;
  transport: TransportName;
}

/** `net:ws:close`: the connection is closed (TCP included). */
export interface CloseMessage {
  ws: WebSocket;
  code: number;
  reason: string;
  /** `'local'`: this side sent the first close frame or destroyed the connection; `'remote'`: the peer did (or its socket went away). */
  initiator: 'local' | 'remote';
  /** Both close frames were exchanged. */
  wasClean: boolean;
  error: WebSocketError | undefined;
}

/** `net:ws:error`: the connection failed (`closeError`), before `close`. */
export interface ErrorMessage {
  ws: WebSocket;
  error: WebSocketError;
}

/** `net:ws:slow-consumer`: the slow-consumer rule fired. */
export interface SlowConsumerMessage {
  ws: WebSocket;
  bufferedAmount: number;
  maxBufferedAmount: number;
  /** How long the limit had been exceeded, in ms (0 when a send found the queue already full). */
  overLimitMs: number;
  action: 'close' | 'terminate';
}

/** Publish the outcome of a client handshake (after redirects: of the last request, timed from it). */
export function traceClientHandshake(
  url: string,
  started: number,
  error: WebSocketError | null,
  ws: WebSocket | undefined,
  transport: TransportName = 'http/1.1',
): void {
  if (!handshakeChannel.hasSubscribers) return;
  const status = error === null ? (transport === 'h2' ? 200 : 101) : (error as { status?: number }).status;
  handshakeChannel.publish({
    side: 'client',
    outcome: error === null ? 'accepted' : status !== undefined ? 'rejected' : 'failed',
    status,
    durationMs: performance.now() - started,
    url,
    remoteAddress: ws?.remoteAddress,
    reason: error?.message,
    ws,
    transport,
  } satisfies HandshakeMessage);
}
