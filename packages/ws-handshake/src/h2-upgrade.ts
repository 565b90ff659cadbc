import type { IncomingMessage } from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { negotiate, type ResolvedServerOptions, resolveOptions, serverSetup } from './accept-policy.js';
import { type HandshakeMessage, handshakeChannel } from './diagnostics.js';
import {
  buildH2AcceptHeaders,
  type H2RequestHeaders,
  h2Headers,
  validateExtendedConnect,
} from './h2-handshake.js';
import { DEFAULT_CLOSE_TIMEOUT, type ServerOptions } from './options.js';
import type { TopicRegistry } from './topics.js';
import { prepareStream, remoteAddressOf } from './transport.js';
import { WebSocket } from './websocket.js';

/*
 * Server side of RFC 8441: an extended CONNECT stream of an HTTP/2 session becomes a WebSocket.
 * The acceptance policy is the HTTP/1.1 one (accept-policy.ts); only the answer differs: a
 * `:status` on the stream instead of a 101 written on a socket.
 */

const { NGHTTP2_NO_ERROR } = http2.constants;

/**
 * What `authorize`, `allowedOrigins`, `handleProtocols` and the `connection` event receive for an
 * HTTP/2 WebSocket in place of an `IncomingMessage`: the fields they use (`method` is `'CONNECT'`,
 * `url` the `:path`, `headers` with `host` copied from `:authority`, `socket` the session's TLS
 * socket) plus the `stream` itself and `transport: 'h2'`.
 */
export interface H2UpgradeRequest {
  method: 'CONNECT';
  url: string;
  headers: H2RequestHeaders;
  httpVersion: '2.0';
  httpVersionMajor: 2;
  httpVersionMinor: 0;
  socket: http2.ServerHttp2Session['socket'] | undefined;
  stream: ServerHttp2Stream;
  transport: 'h2';
}

const views = new WeakMap<ServerHttp2Stream, IncomingMessage>();

/** @internal The request view of `stream` (one per stream, so hooks and `connection` see the same object). */
export function h2RequestOf(stream: ServerHttp2Stream, headers: H2RequestHeaders): IncomingMessage {
  const cached = views.get(stream);
  if (cached !== undefined) return cached;
  const view: H2UpgradeRequest = {
    method: 'CONNECT',
    url: String(headers[':path'] ?? '/'),
    headers: { ...headers, host: String(headers[':authority'] ?? headers.host ?? '') },
    httpVersion: '2.0',
    httpVersionMajor: 2,
    httpVersionMinor: 0,
    socket: stream.session?.socket,
    stream,
    transport: 'h2',
  };
  // The hooks are typed for HTTP/1.1 requests; this view carries every field they are documented to read.
  const req = view as unknown as IncomingMessage;
  views.set(stream, req);
  return req;
}

/**
 * @internal The handshake is over: forget the stream's request view. Left in the cache it would
 * keep the view and its copy of the headers alive as long as the WebSocket lives.
 */
export function releaseH2Request(stream: ServerHttp2Stream): void {
  views.delete(stream);
}

const refusals = new WeakMap<ServerHttp2Stream, { status: number; reason: string }>();

function gone(stream: ServerHttp2Stream): boolean {
  return stream.destroyed || stream.closed || !stream.writable;
}

/**
 * Answer with an error status and a short text body, then end the stream. A client that keeps
 * sending after the refusal is reset (NO_ERROR) once `linger` ms have passed.
 */
function refuse(
  stream: ServerHttp2Stream,
  status: number,
  message: string,
  headers: Record<string, string> | undefined,
  linger: number,
): null {
  if (handshakeChannel.hasSubscribers) refusals.set(stream, { status, reason: message });
  if (gone(stream) || stream.headersSent) {
    if (!stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
    return null;
  }
  let extra: http2.OutgoingHttpHeaders;
  try {
    extra = h2Headers(headers);
  } catch {
    extra = {};
  }
  stream.respond({ ...extra, ':status': status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(message);
  // Discard whatever the client still sends; do not let it hold the stream open.
  stream.resume();
  const timer = setTimeout(() => {
    if (!stream.closed) stream.close(NGHTTP2_NO_ERROR);
  }, linger);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
  return null;
}

async function accept(
  stream: ServerHttp2Stream,
  headers: H2RequestHeaders,
  resolved: ResolvedServerOptions,
  refusal: string | null,
  topics: TopicRegistry | null,
): Promise<WebSocket | null> {
  const { options } = resolved;
  const linger = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
  // Hold incoming DATA while the handshake (maybe an async authorize) runs.
  stream.pause();
  const onError = (): void => {
    stream.destroy();
  };
  stream.on('error', onError);
  try {
    if (gone(stream)) return null;
    if (refusal !== null) return refuse(stream, 503, refusal, undefined, linger);
    const v = validateExtendedConnect(headers);
    if (!v.ok) return refuse(stream, v.status, v.message, v.headers, linger);
    const req = h2RequestOf(stream, headers);
    const decision = await negotiate(req, v, resolved, () => gone(stream));
    if (decision === null || gone(stream)) {
      if (!stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
      return null;
    }
    if (decision.refused) return refuse(stream, decision.status, decision.message, decision.headers, linger);
    let answer: http2.OutgoingHttpHeaders;
    try {
      answer = buildH2AcceptHeaders(decision.protocol, decision.extensions, options.headers);
    } catch {
      return refuse(stream, 500, 'Invalid response headers', undefined, linger);
    }
    stream.respond(answer, { endStream: false });
    prepareStream(stream);
    return new WebSocket(stream, null, serverSetup(v.path, decision, resolved, 'h2', topics), options);
  } finally {
    stream.removeListener('error', onError);
  }
}

/** @internal `handleH2Connect` and `WebSocketServer.handleH2Stream`, with the handshake traced. */
export async function performH2Upgrade(
  stream: ServerHttp2Stream,
  headers: H2RequestHeaders,
  resolved: ResolvedServerOptions,
  refusal: string | null,
  topics: TopicRegistry | null,
): Promise<WebSocket | null> {
  if (!handshakeChannel.hasSubscribers) return accept(stream, headers, resolved, refusal, topics);
  const start = performance.now();
  let ws: WebSocket | null = null;
  let failure: unknown;
  try {
    ws = await accept(stream, headers, resolved, refusal, topics);
    return ws;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    const refused = refusals.get(stream);
    refusals.delete(stream);
    handshakeChannel.publish({
      side: 'server',
      outcome: ws !== null ? 'accepted' : refused !== undefined ? 'rejected' : 'failed',
      status: ws !== null ? 200 : refused?.status,
      durationMs: performance.now() - start,
      url: String(headers[':path'] ?? '/'),
      remoteAddress: remoteAddressOf(stream),
      reason:
        ws !== null
          ? undefined
          : (refused?.reason ??
            (failure instanceof Error ? failure.message : 'Stream closed during the handshake')),
      ws: ws ?? undefined,
      transport: 'h2',
    } satisfies HandshakeMessage);
  }
}

/**
 * Complete (or refuse) an RFC 8441 WebSocket from a `node:http2` server's `stream` event. The
 * server must be created with `settings: { enableConnectProtocol: true }` (browsers and our client
 * only send extended CONNECT to servers that advertise it). Resolves with the open connection
 * (`ws.transport === 'h2'`), or `null` when refused (the error status has then been sent).
 *
 * ```ts
 * const server = http2.createSecureServer({ key, cert, settings: { enableConnectProtocol: true } });
 * server.on('stream', async (stream, headers) => {
 *   if (!isWebSocketConnect(headers)) return; // ordinary requests: yours
 *   const ws = await handleH2Connect(stream, headers, { allowedOrigins: ['https://app.example'] });
 *   ws?.on('message', (data) => ws.send(data));
 * });
 * ```
 */
export function handleH2Connect(
  stream: ServerHttp2Stream,
  headers: H2RequestHeaders,
  options: ServerOptions = {},
): Promise<WebSocket | null> {
  return performH2Upgrade(stream, headers, resolveOptions(options), null, null).finally(() =>
    releaseH2Request(stream),
  );
}
