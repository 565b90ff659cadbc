import type { IncomingMessage } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Server as HttpServer } from '@net/http';
import { originCheck } from '@net/security';
import { PreparedMessage, WebSocket, WebSocketServer } from '@net/ws-handshake';
import type { ChatCore } from '../chat/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TokenIssuer } from './auth.js';
import type { UpgradeRequestView } from './http-guard.js';
import { JsonSession, type SharedFrame } from './json-session.js';

export const MAX_FRAME_BYTES = 16 * 1024;

/** Whether an upgrade may proceed (issue 16: Host allowlist, connection caps). */
export type UpgradeAdmission = { release(): void } | { status: number; code: string; message: string };

export interface WsEndpoint {
  wss: WebSocketServer;
  /** Send `bye` to every client, then close them with 1001. */
  shutdown(): Promise<void>;
}

/**
 * The JSON protocol at /ws: @net/ws-handshake does the upgrade (origin check, frame limits,
 * heartbeats, slow-consumer policy), @net/http hands it the upgrade, JsonSession does the chat.
 */
export function mountWebSocket(
  http: HttpServer,
  deps: {
    core: ChatCore;
    metrics: Metrics;
    log: Logger;
    tokens: TokenIssuer;
    serverName: string;
    transport: 'ws' | 'wss';
    /** Extra allowed origins (same origin is always allowed). */
    origins: readonly string[];
    rate: number;
    burst: number;
    /** Called before every upgrade (HTTP/1.1 or RFC 8441); a refusal is answered with its HTTP status. */
    admit?: (req: UpgradeRequestView) => UpgradeAdmission;
  },
): WsEndpoint {
  const { core, metrics, log, transport } = deps;
  const extra = deps.origins.length > 0 ? originCheck(deps.origins) : () => false;
  const scheme = transport === 'wss' ? 'https' : 'http';
  const sameOrigin = (origin: string, req: IncomingMessage): boolean => {
    const host = req.headers.host;
    const ok = host !== undefined && origin.toLowerCase() === `${scheme}://${host.toLowerCase()}`;
    if (!ok && !extra(origin)) {
      metrics.rejectedInput(transport, 'bad_origin');
      log.info(`${transport}: refused Origin ${JSON.stringify(origin.slice(0, 100))}`);
      return false;
    }
    return true;
  };
  const wss = new WebSocketServer({
    maxPayload: MAX_FRAME_BYTES,
    allowedOrigins: sameOrigin,
    perMessageDeflate: false,
    // Fan-out to a reader that stopped reading must not buffer without bound.
    maxBufferedAmount: 4 * 1024 * 1024,
    heartbeatInterval: 30_000,
    closeTimeout: 3000,
  });
  const sessions = new Set<JsonSession>();
  // The TCP (or TLS) socket of each HTTP/1.1 upgrade, for the per-tick cork in sendShared.
  const upgradedSockets = new WeakMap<IncomingMessage, Duplex>();
  http.upgrade('/ws', (req, socket, head) => {
    const admission = deps.admit?.(req);
    if (admission && 'status' in admission) {
      metrics.rejectedInput(transport, admission.code.toLowerCase());
      refuseUpgrade(socket, admission);
      return;
    }
    if (admission) socket.once('close', admission.release);
    upgradedSockets.set(req, socket);
    wss.handleUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  // HTTP/2 (https with --tls): browsers open /ws as an extended CONNECT stream of the page's own
  // connection (RFC 8441); the same checks apply, with `:authority` standing in for Host.
  http.h2connect('/ws', (stream, headers) => {
    const authority = headers[':authority'];
    const admission = deps.admit?.({
      headers: { host: typeof authority === 'string' ? authority : undefined },
      socket: stream.session?.socket ?? {},
    });
    if (admission && 'status' in admission) {
      metrics.rejectedInput(transport, admission.code.toLowerCase());
      refuseStream(stream, admission);
      return;
    }
    if (admission) stream.once('close', admission.release);
    wss.handleH2Stream(stream, headers).catch(() => stream.destroy());
  });
  wss.on('connection', (ws, req) => {
    metrics.connectionOpened(transport);
    // Which connection carries it (an h2 stream shares the page's): for debugging, and the tests.
    log.debug(`${transport}: WebSocket over ${ws.transport} from ${peerOf(req)}`);
    const batch = tickBatcher(upgradedSockets.get(req));
    const session = new JsonSession(
      core,
      {
        send(text) {
          // The package's promises never reject unhandled: no .catch (one promise less per frame).
          if (ws.readyState === WebSocket.OPEN) void ws.send(text);
        },
        sendShared(frame: SharedFrame) {
          if (ws.readyState !== WebSocket.OPEN) return;
          frame.prepared ??= new PreparedMessage(frame.text);
          batch();
          // Fan-out: no promise or write callback per recipient (the 10,000-member profile).
          ws.queuePrepared(frame.prepared as PreparedMessage);
        },
        close: (code, reason) => void ws.close(code, reason).catch(() => {}),
      },
      {
        transport,
        serverName: deps.serverName,
        tokens: deps.tokens,
        ...(ws.remoteAddress ? { address: ws.remoteAddress } : {}),
        maxFrameBytes: MAX_FRAME_BYTES,
        ratePerSecond: deps.rate,
        burst: deps.burst,
      },
    );
    sessions.add(session);
    ws.on('message', (data, isBinary) => {
      if (isBinary) session.onBinary();
      else session.onText(typeof data === 'string' ? data : data.toString('utf8'));
    });
    ws.on('error', (err) => {
      metrics.rejectedInput(transport, err.code ?? 'error');
      log.debug(`${transport}: ${err.message}`);
    });
    ws.on('close', () => {
      metrics.connectionClosed(transport);
      sessions.delete(session);
      void session.end();
    });
    session.start().catch((err: Error) => {
      session.bye(err.message);
      void ws.close(1013, 'try again later').catch(() => {});
    });
  });
  return {
    wss,
    async shutdown() {
      for (const s of sessions) s.bye('server shutting down');
      await wss.close(1001, 'server shutting down');
    },
  };
}

/** `address:port` of the TCP connection under a request, or '?' once it is gone. */
export function peerOf(req: { socket?: UpgradeRequestView['socket'] | undefined }): string {
  try {
    // Over HTTP/2 `socket` is node's proxy of the session's socket; it throws once that is unbound.
    const s = req.socket;
    return s?.remotePort === undefined ? '?' : `${s.remoteAddress}:${s.remotePort}`;
  } catch {
    return '?';
  }
}

function refuseStream(stream: ServerHttp2Stream, r: { status: number; code: string; message: string }): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = JSON.stringify({ error: { code: r.code, message: r.message } });
  stream.respond({
    ':status': r.status,
    'content-type': 'application/json',
    ...(r.status === 503 ? { 'retry-after': '10' } : {}),
  });
  stream.end(body);
  // A client that keeps sending after the refusal gets its stream reset, not buffered.
  stream.resume();
  setTimeout(() => {
    if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  }, 1000).unref();
}

// Room messages fanned out in the same tick (one group commit of the file store: every message
// one fdatasync made durable is delivered in one loop) reach each member in one writev, not one
// write(2) each; the write per member per message is what a 10,000-member room costs. The first
// shared frame of a tick is written at once (a lone message pays nothing extra); a second one to
// the same connection in that tick corks its socket until the next tick.
let tickEpoch = 0;
let epochBumpQueued = false;
function bumpEpoch(): void {
  tickEpoch++;
  epochBumpQueued = false;
}
function currentEpoch(): number {
  if (!epochBumpQueued) {
    epochBumpQueued = true;
    process.nextTick(bumpEpoch);
  }
  return tickEpoch;
}

/** Bytes a corked socket may hold before it is flushed early (far below `maxBufferedAmount`). */
export const CORK_LIMIT = 256 * 1024;

/** Per connection: call before each shared frame. Without a socket of its own (h2) it does nothing. */
export function tickBatcher(socket: Duplex | undefined): () => void {
  if (socket === undefined) return () => {};
  let last = -1;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  return () => {
    const epoch = currentEpoch();
    // A huge batch must not look like a slow consumer (corked bytes count as buffered).
    if (corked && socket.writableLength > CORK_LIMIT) uncork();
    else if (epoch === last && !corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    last = epoch;
  };
}

function refuseUpgrade(socket: Duplex, r: { status: number; code: string; message: string }): void {
  const body = JSON.stringify({ error: { code: r.code, message: r.message } });
  const reason =
    r.status === 503 ? 'Service Unavailable' : r.status === 421 ? 'Misdirected Request' : 'Forbidden';
  socket.end(
    `HTTP/1.1 ${r.status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
      `${r.status === 503 ? 'retry-after: 10\r\n' : ''}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}
