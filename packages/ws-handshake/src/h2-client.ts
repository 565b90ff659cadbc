import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { traceClientHandshake } from './diagnostics.js';
import {
  AbortedError,
  HandshakeError,
  HandshakeTimeoutError,
  Http2UnsupportedError,
  SocketError,
  WebSocketError,
} from './errors.js';
import { type DeflateParams, deflateOffer, verifyDeflateResponse } from './extension.js';
import { type H2RequestHeaders, verifyH2Response } from './h2-handshake.js';
import {
  type ClientOptions,
  DEFAULT_DEFLATE_THRESHOLD,
  DEFAULT_MAX_PAYLOAD,
  type PerMessageDeflateOptions,
} from './options.js';
import { PerMessageDeflate } from './permessage-deflate.js';
import { WebSocket } from './websocket.js';

/*
 * Client side of RFC 8441: a WebSocket as one stream of a shared HTTP/2 session. Sessions are
 * pooled per origin and TLS settings and closed when their last stream is gone.
 */

interface PooledSession {
  session: http2.ClientHttp2Session;
  /** Resolves once the server's SETTINGS arrived (true: extended CONNECT enabled); rejects if the session failed first. */
  ready: Promise<boolean>;
  /** Whether the server's SETTINGS arrived (its stream limit is known). */
  settled: boolean;
  /** WebSockets (and handshakes in flight) using the session. */
  users: number;
  /** Streams requested and not yet closed: each WebSocket holds one for its lifetime. */
  streams: number;
}

const pool = new Map<string, PooledSession[]>();

/** The outcome of the ALPN step with `http2: 'auto'`: fall back to HTTP/1.1 on this already-open socket. */
export class AlpnFallback {
  constructor(readonly socket: tls.TLSSocket) {}
}

function remove(key: string, entry: PooledSession): void {
  const list = pool.get(key);
  if (list === undefined) return;
  const i = list.indexOf(entry);
  if (i !== -1) list.splice(i, 1);
  if (list.length === 0) pool.delete(key);
}

function release(key: string, entry: PooledSession): void {
  entry.users--;
  if (entry.users === 0) {
    remove(key, entry);
    if (!entry.session.closed && !entry.session.destroyed) entry.session.close();
  }
}

/** Open the TLS (or TCP) connection; resolves with a session, or an `AlpnFallback` in auto mode. */
function openSession(
  url: URL,
  options: ClientOptions,
  auto: boolean,
): Promise<http2.ClientHttp2Session | AlpnFallback> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const secure = url.protocol === 'wss:';
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const authority = `${secure ? 'https' : 'http'}://${url.host}`;
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const onError = (error: Error & { code?: string }): void =>
      reject(
        error.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL'
          ? new Http2UnsupportedError('Server refused ALPN h2 (no_application_protocol alert)')
          : new SocketError(error),
      );
    if (secure) {
      socket = tls.connect({
        ...options.tls,
        host,
        port,
        servername: options.tls?.servername ?? (net.isIP(host) === 0 ? host : undefined),
        ALPNProtocols: auto ? ['h2', 'http/1.1'] : ['h2'],
      });
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        socket.removeListener('error', onError);
        const alpn = (socket as tls.TLSSocket).alpnProtocol;
        if (alpn === 'h2') {
          resolve(http2.connect(authority, { createConnection: () => socket }));
        } else if (auto) {
          resolve(new AlpnFallback(socket as tls.TLSSocket));
        } else {
          socket.destroy();
          reject(new Http2UnsupportedError(`Server did not select h2 in ALPN (got ${alpn || 'none'})`));
        }
      });
    } else {
      socket = net.connect({
        host,
        port,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        ...(options.family !== undefined ? { family: options.family } : {}),
      });
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.removeListener('error', onError);
        resolve(http2.connect(authority, { createConnection: () => socket }));
      });
    }
  });
}

function pooled(key: string, session: http2.ClientHttp2Session): PooledSession {
  const entry: PooledSession = {
    session,
    users: 0,
    streams: 0,
    settled: false,
    ready: new Promise<boolean>((resolve, reject) => {
      session.once('remoteSettings', (settings) => {
        entry.settled = true;
        resolve(settings.enableConnectProtocol === true);
      });
      session.once('error', (error) => reject(new SocketError(error)));
      session.once('close', () => reject(new SocketError(new Error('HTTP/2 session closed'))));
    }),
  };
  entry.ready.catch(() => {});
  // A session error reaches every stream; the session itself must not throw.
  session.on('error', () => {});
  session.once('close', () => remove(key, entry));
  session.once('goaway', () => remove(key, entry));
  const list = pool.get(key);
  if (list === undefined) pool.set(key, [entry]);
  else list.push(entry);
  return entry;
}

/**
 * Sessions being opened (TLS + ALPN), so concurrent connect() calls to one origin share one.
 * `h2`: the opening produced a pooled HTTP/2 session (in auto mode, waiters fall back otherwise).
 */
const opening = new Map<string, { done: Promise<void>; h2: boolean }>();

/**
 * Whether the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves no stream for another WebSocket
 * (node:http2 reports 2^32-1 when the server sets no limit). A stream beyond the limit would wait
 * in the session until another closed, which for WebSockets means until the handshake times out.
 */
function isFull(e: PooledSession): boolean {
  if (!e.settled) return false;
  return e.streams >= (e.session.remoteSettings.maxConcurrentStreams ?? 2 ** 32 - 1);
}

function findSession(key: string): PooledSession | undefined {
  return pool.get(key)?.find((e) => !e.session.closed && !e.session.destroyed && !isFull(e));
}

const functionIds = new WeakMap<object, number>();
let nextFunctionId = 0;

/** A fingerprint of TLS options, so only sockets with equal trust settings share a session. */
function tlsFingerprint(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return createHash('sha256').update(value).digest('base64');
  }
  if (
    typeof value === 'function' ||
    (typeof value === 'object' && !Array.isArray(value) && value.constructor !== Object)
  ) {
    // Functions (checkServerIdentity) and objects like a SecureContext compare by identity.
    let id = functionIds.get(value as object);
    if (id === undefined) functionIds.set(value as object, (id = ++nextFunctionId));
    return `#${id}`;
  }
  if (Array.isArray(value)) return `[${value.map(tlsFingerprint).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${k}:${tlsFingerprint(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function poolKey(url: URL, tlsOptions?: ClientOptions['tls']): string {
  const origin = `${url.protocol}//${url.host}`;
  return tlsOptions === undefined ? origin : `${origin} ${tlsFingerprint(tlsOptions)}`;
}

/** Number of pooled HTTP/2 sessions to `url`'s origin (diagnostics and tests). */
export function h2SessionCount(url: string | URL): number {
  const origin = poolKey(new URL(String(url)));
  let n = 0;
  for (const [key, list] of pool) if (key === origin || key.startsWith(`${origin} `)) n += list.length;
  return n;
}

/**
 * Open `url` as an RFC 8441 WebSocket. Resolves with the socket, or with an `AlpnFallback`
 * (auto mode, server chose HTTP/1.1 in ALPN) or `null` (auto mode, server speaks h2 without
 * extended CONNECT) for the caller to continue over HTTP/1.1.
 */
export function connectH2(
  url: URL,
  options: ClientOptions,
  protocols: string[],
  deflate: PerMessageDeflateOptions | null,
  timeout: number,
): Promise<WebSocket | AlpnFallback | null> {
  const auto = options.http2 === 'auto';
  const key = poolKey(url, options.tls);
  const signal = options.signal;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new AbortedError(signal.reason));
      return;
    }
    let entry: PooledSession | undefined;
    let stream: http2.ClientHttp2Stream | undefined;
    let settled = false;
    // Our use of `entry` before a stream exists (after that, the stream's close releases it).
    const drop = (): void => {
      if (entry !== undefined && stream === undefined) release(key, entry);
      entry = undefined;
    };
    const finish = (error: WebSocketError | null, result?: WebSocket | AlpnFallback | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (result instanceof WebSocket || error !== null) {
        traceClientHandshake(
          url.href,
          started,
          error,
          result instanceof WebSocket ? result : undefined,
          'h2',
        );
      }
      if (error !== null) {
        // destroy(): RST_STREAM (CANCEL) at once, even with unread response data.
        if (stream !== undefined && !stream.destroyed) stream.destroy();
        drop();
        reject(error);
      } else {
        resolve(result ?? null);
      }
    };
    const timer = setTimeout(() => finish(new HandshakeTimeoutError(timeout)), timeout);
    const onAbort = (): void => finish(new AbortedError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });

    const start = async (): Promise<void> => {
      // A session whose stream limit is reached is skipped and another one shared or opened.
      // Sockets that joined a session before its SETTINGS arrived find out after them, and go
      // round again; the handshake timeout bounds the whole loop.
      for (;;) {
        let found = findSession(key);
        let openedHere = false;
        if (found === undefined) {
          const pending = opening.get(key);
          if (pending !== undefined) {
            // Another connect() is opening this origin's session: share it rather than racing.
            await pending.done;
            found = findSession(key);
            if (found === undefined && auto && !pending.h2) {
              if (!settled) finish(null, null);
              return;
            }
          }
        }
        if (found === undefined) {
          let markDone!: () => void;
          const done = new Promise<void>((resolve) => {
            markDone = resolve;
          });
          const mine = { done, h2: false };
          opening.set(key, mine);
          try {
            const opened = await openSession(url, options, auto);
            if (opened instanceof AlpnFallback) {
              if (settled) opened.socket.destroy();
              else finish(null, opened);
              return;
            }
            found = pooled(key, opened);
            mine.h2 = true;
            openedHere = true;
          } finally {
            if (opening.get(key) === mine) opening.delete(key);
            markDone();
          }
        }
        entry = found;
        entry.users++;
        const enabled = await entry.ready;
        if (settled) {
          drop();
          return;
        }
        if (!enabled) {
          drop();
          if (auto) finish(null, null);
          else
            finish(
              new Http2UnsupportedError(
                'Server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)',
              ),
            );
          return;
        }
        if (!isFull(entry)) {
          request(entry);
          return;
        }
        drop();
        if (openedHere) {
          // A fresh session with no stream to spare: the server allows none (limit 0).
          finish(
            new HandshakeError(
              'The HTTP/2 server allows no stream for the WebSocket (SETTINGS_MAX_CONCURRENT_STREAMS)',
            ),
          );
          return;
        }
      }
    };

    const request = (e: PooledSession): void => {
      const headers: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) {
        if (value !== undefined) headers[name.toLowerCase()] = value as string;
      }
      Object.assign(headers, {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': url.protocol === 'wss:' ? 'https' : 'http',
        ':authority': url.host,
        ':path': url.pathname + url.search,
        'sec-websocket-version': '13',
      });
      delete headers.host;
      if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(', ');
      if (deflate !== null) headers['sec-websocket-extensions'] = deflateOffer(deflate);
      if (options.origin !== undefined) headers.origin = options.origin;
      let s: http2.ClientHttp2Stream;
      try {
        s = e.session.request(headers, { endStream: false });
      } catch (error) {
        drop();
        finish(error instanceof WebSocketError ? error : new SocketError(error));
        return;
      }
      stream = s;
      e.streams++;
      s.once('close', () => {
        e.streams--;
        release(key, e);
      });
      s.once('error', (error) => finish(new SocketError(error)));
      s.once('close', () =>
        finish(new SocketError(new Error(`Stream closed before the response (code ${s.rstCode})`))),
      );
      s.once('response', (h: H2RequestHeaders) => onResponse(s, h));
    };

    const onResponse = (s: http2.ClientHttp2Stream, h: H2RequestHeaders): void => {
      if (settled) return;
      const status = Number(h[':status']);
      const verified = verifyH2Response(h, protocols);
      if (typeof verified === 'string') {
        finish(new HandshakeError(verified, status));
        return;
      }
      let params: DeflateParams | null = null;
      let extensions = '';
      if (verified.extensions.length > 0) {
        const ext = verified.extensions[0]!;
        if (deflate === null || verified.extensions.length > 1 || ext.name !== 'permessage-deflate') {
          finish(new HandshakeError('Server accepted an extension that was not offered', status));
          return;
        }
        const agreed = verifyDeflateResponse(ext, deflate);
        if (typeof agreed === 'string') {
          finish(new HandshakeError(agreed, status));
          return;
        }
        params = agreed;
        extensions = String(h['sec-websocket-extensions'] ?? '');
      }
      const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
      const ws = new WebSocket(
        s,
        null,
        {
          isServer: false,
          url: url.href,
          protocol: verified.protocol,
          extensions,
          deflate:
            params === null
              ? null
              : new PerMessageDeflate(params, false, maxPayload, deflate?.level, deflate?.memLevel),
          deflateThreshold: deflate?.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
          heartbeatInterval: options.heartbeatInterval ?? 0,
          transport: 'h2',
        },
        options,
      );
      finish(null, ws);
    };

    start().catch((error: unknown) => {
      drop();
      finish(error instanceof WebSocketError ? error : new SocketError(error));
    });
  });
}
