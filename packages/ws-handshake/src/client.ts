import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { traceClientHandshake } from './diagnostics.js';
import {
  AbortedError,
  HandshakeError,
  HandshakeTimeoutError,
  InvalidArgumentError,
  SocketError,
  TooManyRedirectsError,
  WebSocketError,
} from './errors.js';
import {
  type DeflateParams,
  deflateOffer,
  isToken,
  validateDeflateOptions,
  verifyDeflateResponse,
} from './extension.js';
import { createClientKey, verifyUpgradeResponse } from './handshake.js';
import {
  type ClientOptions,
  DEFAULT_DEFLATE_THRESHOLD,
  DEFAULT_MAX_PAYLOAD,
  type PerMessageDeflateOptions,
} from './options.js';
import { PerMessageDeflate } from './permessage-deflate.js';
import { AlpnFallback, connectH2 } from './h2-client.js';
import { openTunnel, resolveProxy } from './proxy.js';
import { WebSocket } from './websocket.js';

const DEFAULT_TIMEOUT = 10_000;

function parseUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new InvalidArgumentError(`Invalid URL: ${String(input)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new InvalidArgumentError(`URL scheme must be ws: or wss:, got ${url.protocol}`);
  }
  // RFC 6455 §3: fragment identifiers are meaningless for WebSocket URIs and must not be used.
  if (url.hash !== '') throw new InvalidArgumentError('WebSocket URLs must not contain a fragment');
  return url;
}

function normalizeProtocols(protocols: ClientOptions['protocols']): string[] {
  if (protocols === undefined) return [];
  const list = typeof protocols === 'string' ? [protocols] : [...protocols];
  const seen = new Set<string>();
  for (const p of list) {
    if (!isToken(p) || seen.has(p)) throw new InvalidArgumentError(`Invalid or duplicate subprotocol: ${p}`);
    seen.add(p);
  }
  return list;
}

/**
 * Open a WebSocket connection to a `ws:` or `wss:` URL. Resolves once the server's 101
 * response is verified (status, Sec-WebSocket-Accept, subprotocol, extensions).
 *
 * ```ts
 * const ws = await connect('ws://127.0.0.1:9001', { protocols: ['chat'] });
 * ws.on('message', (data) => console.log(data));
 * await ws.send('hello');
 * ```
 */
export function connect(url: string | URL, options: ClientOptions = {}): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, fail) => {
    let deflate: PerMessageDeflateOptions | null = null;
    let protocols: string[];
    let target: URL;
    try {
      target = parseUrl(url);
      protocols = normalizeProtocols(options.protocols);
      if (options.perMessageDeflate !== undefined && options.perMessageDeflate !== false) {
        deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate;
        try {
          validateDeflateOptions(deflate);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      }
    } catch (error) {
      fail(error);
      return;
    }
    const h1 = (socket?: Duplex): void =>
      attempt(
        target,
        options,
        protocols,
        deflate,
        options.maxRedirects ?? 0,
        { ...options.headers },
        resolve,
        fail,
        socket,
      );
    const h2 = options.http2 === true || (options.http2 === 'auto' && target.protocol === 'wss:');
    if (!h2) {
      h1();
      return;
    }
    if (options.proxy !== undefined && options.proxy !== false) {
      fail(new InvalidArgumentError('The http2 option cannot be combined with proxy'));
      return;
    }
    connectH2(
      target,
      options,
      protocols,
      deflate,
      options.timeout ?? options.handshakeTimeout ?? DEFAULT_TIMEOUT,
    ).then((result) => {
      if (result instanceof WebSocket) resolve(result);
      else if (result instanceof AlpnFallback) h1(result.socket);
      else h1();
    }, fail);
  });
}

function attempt(
  url: URL,
  options: ClientOptions,
  protocols: string[],
  deflate: PerMessageDeflateOptions | null,
  redirectsLeft: number,
  userHeaders: http.OutgoingHttpHeaders,
  resolve: (ws: WebSocket) => void,
  fail: (error: WebSocketError) => void,
  /** A TLS connection already open to `url` (`http2: 'auto'` after ALPN chose HTTP/1.1). */
  preconnected?: Duplex,
): void {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const key = createClientKey();
  const headers: http.OutgoingHttpHeaders = {
    ...userHeaders,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
  if (deflate !== null) headers['Sec-WebSocket-Extensions'] = deflateOffer(deflate);
  if (options.origin !== undefined) headers.Origin = options.origin;

  const timeout = options.timeout ?? options.handshakeTimeout ?? DEFAULT_TIMEOUT;
  const signal = options.signal;
  if (signal?.aborted === true) {
    fail(new AbortedError(signal.reason));
    return;
  }
  let proxy: URL | null;
  try {
    proxy = resolveProxy(options.proxy, url);
  } catch (error) {
    fail(error as WebSocketError);
    return;
  }
  // The proxy connection while CONNECT is in flight: not yet owned by the request.
  let tunnel: Duplex | undefined;
  const started = performance.now();
  let settled = false;
  const settle = (error: WebSocketError | null, ws?: WebSocket): void => {
    if (settled) return;
    settled = true;
    traceClientHandshake(url.href, started, error, ws);
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (error !== null) tunnel?.destroy();
    if (error !== null) fail(error);
    else resolve(ws!);
  };
  const onAbort = (): void => {
    settle(new AbortedError(signal?.reason));
    req.destroy();
  };

  const tlsOptions = {
    ...options.tls,
    host,
    port,
    servername: options.tls?.servername ?? (net.isIP(host) === 0 ? host : undefined),
  };
  const createConnection = (
    _: unknown,
    callback: (error: Error | null, socket?: Duplex) => void,
  ): Duplex | undefined => {
    if (preconnected !== undefined) return preconnected;
    if (proxy !== null) {
      // TLS to the origin runs inside the tunnel, with the usual certificate checks.
      tunnel = openTunnel(proxy, host, port, (error, socket) => {
        if (error !== null || socket === undefined) callback(error);
        else callback(null, secure ? tls.connect({ ...tlsOptions, socket }) : socket);
      });
      return undefined;
    }
    if (secure) return tls.connect(tlsOptions);
    return net.connect({
      host,
      port,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      ...(options.family !== undefined ? { family: options.family } : {}),
    });
  };

  const req = (secure ? https : http).request({
    method: 'GET',
    host,
    port,
    path: url.pathname + url.search,
    headers,
    createConnection: createConnection as never,
    setHost: true,
  });
  const timer = setTimeout(() => {
    settle(new HandshakeTimeoutError(timeout));
    req.destroy();
  }, timeout);

  signal?.addEventListener('abort', onAbort, { once: true });

  req.on('error', (error) => {
    settle(error instanceof WebSocketError ? error : new SocketError(error));
  });

  req.on('response', (res: IncomingMessage) => {
    const status = res.statusCode ?? 0;
    res.resume();
    req.destroy();
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location !== undefined && (options.maxRedirects ?? 0) > 0) {
      if (redirectsLeft <= 0) {
        settle(new TooManyRedirectsError(options.maxRedirects ?? 0, location));
        return;
      }
      let next: URL;
      try {
        next = parseUrl(new URL(location, url.href.replace(/^ws/, 'http')));
      } catch (error) {
        settle(error as WebSocketError);
        return;
      }
      // Credentials stay with the origin they were meant for.
      const nextHeaders = { ...userHeaders };
      if (next.host !== url.host || next.protocol !== url.protocol) {
        for (const name of Object.keys(nextHeaders)) {
          const lower = name.toLowerCase();
          if (lower === 'authorization' || lower === 'cookie') delete nextHeaders[name];
        }
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      attempt(next, options, protocols, deflate, redirectsLeft - 1, nextHeaders, resolve, fail);
      return;
    }
    settle(new HandshakeError(`Unexpected server response: ${status}`, status));
  });

  req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (settled) {
      socket.destroy();
      return;
    }
    const verified = verifyUpgradeResponse(res, key, protocols);
    if (typeof verified === 'string') {
      socket.destroy();
      settle(new HandshakeError(verified, res.statusCode));
      return;
    }
    let params: DeflateParams | null = null;
    let extensions = '';
    if (verified.extensions.length > 0) {
      const ext = verified.extensions[0]!;
      if (deflate === null || verified.extensions.length > 1 || ext.name !== 'permessage-deflate') {
        socket.destroy();
        settle(new HandshakeError('Server accepted an extension that was not offered', 101));
        return;
      }
      const agreed = verifyDeflateResponse(ext, deflate);
      if (typeof agreed === 'string') {
        socket.destroy();
        settle(new HandshakeError(agreed, 101));
        return;
      }
      params = agreed;
      extensions = res.headers['sec-websocket-extensions'] ?? '';
    }
    const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    const ws = new WebSocket(
      socket,
      head,
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
      },
      options,
    );
    settle(null, ws);
  });

  req.end();
}
