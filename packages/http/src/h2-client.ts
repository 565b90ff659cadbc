import type { IncomingMessage } from 'node:http';
import * as http2 from 'node:http2';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ConnectionError } from './errors.js';
import type { RequestOptions } from './options.js';

/** One open session per origin (and TLS options), shared by every h2 request to it. */
const sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
/** Origins that answered ALPN with HTTP/1.1 under `http2: 'auto'`; bounded, oldest dropped first. */
const http1Origins = new Set<string>();
const MAX_REMEMBERED = 1024;
/** Time allowed to connect (TCP + TLS) a new session, in ms. */
const CONNECT_TIMEOUT = 10_000;

function keyOf(url: URL, tls: RequestOptions['tls']): string {
  return tls === undefined ? url.origin : `${url.origin}|${JSON.stringify(tls)}`;
}

function remember(set: Set<string>, key: string): void {
  if (set.size >= MAX_REMEMBERED) set.delete(set.values().next().value!);
  set.add(key);
}

/**
 * The h2 session to use for `url`, or null when the request should go over HTTP/1.1: `'auto'`
 * offers both by ALPN and uses h2 only when the server picks it; `true` always uses h2 (h2c with
 * prior knowledge for http: URLs).
 */
export async function sessionFor(
  url: URL,
  mode: true | 'auto',
  tls: RequestOptions['tls'],
): Promise<http2.ClientHttp2Session | null> {
  const key = keyOf(url, tls);
  if (mode === 'auto' && (url.protocol === 'http:' || http1Origins.has(key))) return null;
  let pending = sessions.get(key);
  if (pending === undefined) {
    pending = open(url, mode, tls);
    sessions.set(key, pending);
    pending.then(
      (session) => {
        const forget = (): void => {
          if (sessions.get(key) === pending) sessions.delete(key);
        };
        session.once('close', forget);
        session.once('goaway', forget);
        session.once('error', forget);
      },
      () => sessions.delete(key),
    );
  }
  const session = await pending.catch((err: unknown) => {
    if (err instanceof Http1Chosen) {
      remember(http1Origins, key);
      return null;
    }
    throw err;
  });
  if (session === null || (!session.closed && !session.destroyed)) return session;
  sessions.delete(key);
  return sessionFor(url, mode, tls);
}

class Http1Chosen extends Error {}

function open(url: URL, mode: true | 'auto', tls: RequestOptions['tls']): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    let session: http2.ClientHttp2Session;
    const timer = setTimeout(
      () => fail(new Error(`HTTP/2 connect to ${url.origin} timed out`)),
      CONNECT_TIMEOUT,
    );
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      session?.destroy();
      reject(err instanceof Http1Chosen ? err : new ConnectionError(err));
    };
    const ready = (): void => {
      clearTimeout(timer);
      session.off('error', fail);
      // Errors after connect surface on the streams; an idle session must not keep the process alive.
      session.on('error', () => {});
      session.unref();
      resolve(session);
    };
    if (url.protocol === 'http:') {
      session = http2.connect(url.origin);
      session.once('connect', ready);
      session.once('error', fail);
      return;
    }
    const socket: TLSSocket = tlsConnect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      servername: /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname,
      ALPNProtocols: mode === 'auto' ? ['h2', 'http/1.1'] : ['h2'],
      ...tls,
    });
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy();
        fail(mode === 'auto' ? new Http1Chosen() : new Error(`${url.origin} does not speak h2`));
        return;
      }
      socket.off('error', fail);
      session = http2.connect(url.origin, { createConnection: () => socket });
      session.once('connect', ready);
      session.once('error', fail);
    });
  });
}

/**
 * Sends one request as a stream of `session`. The returned object looks enough like an
 * `IncomingMessage` (status, headers, `complete`, a readable body) for `ClientResponse`.
 */
export function h2Request(
  session: http2.ClientHttp2Session,
  url: URL,
  method: string,
  headers: Record<string, string | number | readonly string[]>,
  body: Uint8Array | Readable | undefined,
): { stream: http2.ClientHttp2Stream; response: Promise<IncomingMessage> } {
  const outgoing: http2.OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    // Connection-specific fields are not allowed in HTTP/2 (RFC 9113 §8.2.2).
    if (name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding' || name === 'upgrade')
      continue;
    if (name === 'host') continue;
    outgoing[name] = headers[name] as string;
  }
  outgoing[':method'] = method;
  outgoing[':path'] = url.pathname + url.search;
  outgoing[':authority'] = url.host;
  const stream = session.request(outgoing, { endStream: body === undefined });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    stream.once('response', (h) => {
      const plain: Record<string, string | string[] | undefined> = {};
      for (const name of Object.keys(h))
        if (name.charCodeAt(0) !== 58 /* ':' */) plain[name] = h[name] as string;
      Object.defineProperties(stream, {
        statusCode: { value: Number(h[':status']) },
        statusMessage: { value: '' },
        headers: { value: plain },
        complete: { get: () => stream.readableEnded },
      });
      resolve(stream as unknown as IncomingMessage);
    });
    stream.once('error', reject);
    stream.once('close', () => {
      if (!('statusCode' in stream))
        reject(new Error(`Stream closed (code ${stream.rstCode}) before a response`));
    });
  });
  if (body instanceof Readable) {
    body.on('error', (err) => stream.destroy(err));
    body.pipe(stream);
  } else if (body !== undefined) stream.end(body);
  return { stream, response };
}
