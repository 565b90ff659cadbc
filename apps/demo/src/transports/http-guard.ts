import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { type Context, HttpError, reply, type Server } from '@net/http';
import type { Metrics } from '../metrics.js';
import type { AddressCaps } from './address-caps.js';
import type { UpgradeAdmission } from './ws.js';

export interface HttpGuardOptions {
  /** Sockets per client address on this listener. */
  readonly sockets: AddressCaps;
  /** WebSockets per client address and in all, shared by every HTTP listener. */
  readonly webSockets: AddressCaps;
  readonly allowHost: (host: string | undefined) => boolean;
  readonly metrics: Metrics;
  readonly transport: 'http' | 'https';
  /** Strict-Transport-Security value for every response (HTTPS in --tls-only mode). */
  readonly hsts?: string;
}

/**
 * What an upgrade admission looks at: an HTTP/1.1 upgrade request, or the view of an RFC 8441
 * stream (`host` copied from `:authority`, `socket` the session's TLS socket).
 */
export interface UpgradeRequestView {
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined };
}

export interface HttpGuard {
  /** The `onRequest` hook of the HTTP server: undefined lets the request through. */
  onRequest(ctx: Context): unknown;
  /** The `admit` hook of the WebSocket endpoint. */
  admitUpgrade(req: UpgradeRequestView): UpgradeAdmission;
  /** Start counting the server's sockets (call once, before listen). */
  attach(server: Server): void;
}

/**
 * Issue 16 for HTTP and WebSocket: the Host allowlist (DNS rebinding), per-address socket caps
 * (a socket over the cap gets 503 on every request and is closed), and WebSocket caps.
 */
export function httpGuard(o: HttpGuardOptions): HttpGuard {
  // Keyed by the peer's address and port, not the socket object: over HTTP/2 a request only sees
  // node's per-stream proxy of the session's TLS socket, whose reads reach that socket.
  const overCap = new Set<string>();
  const connKey = (s: UpgradeRequestView['socket']) => `${s.remoteAddress}|${s.remotePort}`;
  const hostRefusal = (host: string | undefined) => ({
    status: 421,
    code: 'HOST_NOT_ALLOWED',
    message: `this server does not answer to Host ${JSON.stringify((host ?? '').slice(0, 100))} (see --host-name)`,
  });
  const capRefusal = (what: string) => ({
    status: 503,
    code: 'TOO_MANY_CONNECTIONS',
    message: `too many ${what}, try again later`,
  });
  return {
    attach(server) {
      // HTTPS: count the TLS socket (the one requests arrive on), after the handshake.
      const event = o.transport === 'https' ? 'secureConnection' : 'connection';
      server.node.on(event, (socket: Socket) => {
        const slot = o.sockets.acquire(socket.remoteAddress);
        if ('refused' in slot) {
          const key = connKey(socket);
          overCap.add(key);
          socket.once('close', () => overCap.delete(key));
          o.metrics.rejectedInput(o.transport, 'too_many_connections');
          // Answered with 503 if it sends a request; one that does not is cut off soon.
          setTimeout(() => socket.destroy(), 5000).unref();
          return;
        }
        socket.once('close', slot.release);
      });
    },
    onRequest(ctx) {
      // HTTP/2 requests carry the name in `:authority` (@net/http refuses a `host` that disagrees).
      const authority = ctx.req.headers[':authority'];
      const host = ctx.req.headers.host ?? (typeof authority === 'string' ? authority : undefined);
      if (!o.allowHost(host)) {
        o.metrics.rejectedInput(o.transport, 'host_not_allowed');
        const r = hostRefusal(host);
        throw new HttpError(r.status, r.message, { code: r.code });
      }
      if (overCap.has(connKey(ctx.req.socket))) {
        // A reply, not a thrown 5xx: those are logged as server errors, one line per refusal.
        const r = capRefusal(`connections from your address (at most ${o.sockets.max})`);
        return reply(
          r.status,
          { error: { code: r.code, message: r.message } },
          { connection: 'close', 'retry-after': '10' },
        );
      }
      if (o.hsts) ctx.header('strict-transport-security', o.hsts);
      return undefined;
    },
    admitUpgrade(req) {
      if (!o.allowHost(req.headers.host)) return hostRefusal(req.headers.host);
      if (overCap.has(connKey(req.socket)))
        return capRefusal(`connections from your address (at most ${o.sockets.max})`);
      const slot = o.webSockets.acquire(req.socket.remoteAddress);
      if ('refused' in slot) {
        return capRefusal(
          slot.refused === 'address'
            ? `WebSockets from your address (at most ${o.webSockets.max})`
            : `WebSockets on this server (at most ${o.webSockets.total})`,
        );
      }
      return slot;
    },
  };
}
