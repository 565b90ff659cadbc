import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Server as HttpServer } from '@net/http';
import { originCheck } from '@net/security';
import { PreparedMessage, WebSocket, WebSocketServer } from '@net/ws-handshake';
import type { ChatCore } from '../chat/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { TokenIssuer } from './auth.js';
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
    /** Called before every upgrade; a refusal is answered with its HTTP status. */
    admit?: (req: IncomingMessage) => UpgradeAdmission;
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
  http.upgrade('/ws', (req, socket, head) => {
    const admission = deps.admit?.(req);
    if (admission && 'status' in admission) {
      metrics.rejectedInput(transport, admission.code.toLowerCase());
      refuseUpgrade(socket, admission);
      return;
    }
    if (admission) socket.once('close', admission.release);
    wss.handleUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  wss.on('connection', (ws) => {
    metrics.connectionOpened(transport);
    const session = new JsonSession(
      core,
      {
        send(text) {
          if (ws.readyState === WebSocket.OPEN) ws.send(text).catch(() => {});
        },
        sendShared(frame: SharedFrame) {
          if (ws.readyState !== WebSocket.OPEN) return;
          frame.prepared ??= new PreparedMessage(frame.text);
          ws.sendPrepared(frame.prepared as PreparedMessage).catch(() => {});
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
