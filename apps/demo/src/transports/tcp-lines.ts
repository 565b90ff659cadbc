import { createServer, InvalidFrameError, LineTooLongError, lines, type Server } from '@net/tcp';
import type { TlsOptions } from 'node:tls';
import type { ChatCore } from '../chat/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AddressCaps } from './address-caps.js';
import type { TokenIssuer } from './auth.js';
import { LineSession } from './line-session.js';

export const MAX_LINE_BYTES = 8192;
/**
 * After a client's FIN (`printf '/nick ada\nhello\n' | nc -N host port`), how long its lines may
 * still take to be answered before the connection is closed anyway.
 */
export const HALF_CLOSE_GRACE_MS = 30_000;

export interface LineServer {
  server: Server<string, string>;
  /** Say goodbye to every client, then close within the deadline. */
  shutdown(deadlineMs: number): Promise<void>;
}

/**
 * The netcat-friendly line protocol over @net/tcp (plain or TLS): the codec frames lines, refuses
 * over-long lines and invalid UTF-8 recoverably, and LineSession does the chat.
 */
export function createLineServer(deps: {
  core: ChatCore;
  metrics: Metrics;
  log: Logger;
  serverName: string;
  transport: 'tcp' | 'tls';
  tls?: TlsOptions;
  tokens?: TokenIssuer;
  /** Connections per client address (issue 16); over the cap: an error line, then close. */
  caps?: AddressCaps;
}): LineServer {
  const { core, metrics, log, transport } = deps;
  const sessions = new Set<LineSession>();
  const server = createServer<string, string>(
    {
      codec: lines({ maxLineLength: MAX_LINE_BYTES, fatalUtf8: true, encodeDelimiter: '\r\n' }),
      protocolErrors: 'continue',
      idleTimeout: 30 * 60_000,
      maxPendingBytes: 1024 * 1024,
      // A client that sent its lines and then FIN still gets them handled and answered (below).
      allowHalfOpen: true,
      ...(deps.tls ? { tls: deps.tls } : {}),
    },
    (conn) => {
      const slot = deps.caps?.acquire(conn.remoteAddress);
      if (slot && 'refused' in slot) {
        metrics.rejectedInput(transport, 'too_many_connections');
        conn.write(`! TOO_MANY_CONNECTIONS: at most ${deps.caps!.max} connections per address, try later`);
        void conn.end();
        return;
      }
      metrics.connectionOpened(transport);
      const session = new LineSession(
        core,
        {
          writeLine(line) {
            if (conn.state !== 'open') return;
            try {
              conn.write(line);
            } catch (err) {
              // A reader that does not keep up is cut off rather than buffered without bound.
              log.debug(
                `${transport}: dropping slow client ${conn.remoteAddress}: ${(err as Error).message}`,
              );
              metrics.rejectedInput(transport, 'slow_consumer');
              conn.destroy();
            }
          },
          end: () => void conn.end(),
        },
        {
          transport,
          serverName: deps.serverName,
          tokens: deps.tokens,
          ...(conn.remoteAddress ? { address: conn.remoteAddress } : {}),
        },
      );
      sessions.add(session);
      conn.on('message', (line) => session.onLine(line));
      conn.on('error', (err) => {
        if (err instanceof LineTooLongError) {
          session.onBadLine('LINE_TOO_LONG', `lines are limited to ${MAX_LINE_BYTES} bytes`);
        } else if (err instanceof InvalidFrameError) {
          session.onBadLine('INVALID_UTF8', 'lines must be valid UTF-8');
        } else log.debug(`${transport}: ${conn.remoteAddress}: ${err.message}`);
      });
      conn.on('end', () => {
        // The client is done sending: answer what it sent (also lines that wait for start-up),
        // then close. Bounded, whatever the store does.
        const timer = setTimeout(() => void conn.end(), HALF_CLOSE_GRACE_MS);
        void session.drain().finally(() => {
          clearTimeout(timer);
          void conn.end();
        });
      });
      conn.on('close', () => {
        slot?.release();
        metrics.connectionClosed(transport);
        sessions.delete(session);
        void session.end();
      });
      session.start().catch((err: Error) => {
        conn.write(`! ${(err as { code?: string }).code ?? 'ERROR'}: ${err.message}`);
        void conn.end();
      });
    },
  );
  server.on('error', (err) => log.warn(`${transport} server: ${err.message}`));
  return {
    server,
    async shutdown(deadlineMs) {
      for (const s of sessions) s.bye('server shutting down, bye');
      // Goodbye lines are flushed by a graceful end; stragglers are cut at the deadline.
      for (const conn of server.connections) void conn.end();
      await server.close({ deadline: deadlineMs });
    },
  };
}
