import type http2 from 'node:http2';
import type net from 'node:net';
import { type CreateServerOptions, WebSocketServer } from '../src/index.js';
import { h2Server, h2Session, makeCert } from './h2-helpers.js';
import {
  echoServer,
  FrameReader,
  frame,
  type RawClient,
  rawClient,
  waitFor,
  withTimeout,
} from './helpers.js';

/*
 * One echo server reachable over either transport, with a raw frame client for it, so the
 * RFC 6455 conformance cases run unchanged over HTTP/1.1 Upgrade and RFC 8441 h2 streams.
 */

export type Transport = 'http/1.1' | 'h2';

export interface ConformanceTarget {
  server: WebSocketServer;
  /** A raw client; `opts.headers` are request headers, `response` the answer's header lines. */
  open(opts?: { headers?: Record<string, string>; expectStatus?: number; path?: string }): Promise<RawClient>;
  close(): Promise<void>;
}

let tls: { key: Buffer; cert: Buffer } | undefined;

/** A raw frame client on one extended CONNECT stream of `session`. */
async function rawH2Client(
  session: http2.ClientHttp2Session,
  opts: { headers?: Record<string, string>; expectStatus?: number; path?: string },
): Promise<RawClient> {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'https',
    ':path': opts.path ?? '/',
    ':authority': 'localhost',
    'sec-websocket-version': '13',
  };
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  const stream = session.request(headers, { endStream: false });
  const reader = new FrameReader();
  let ended = false;
  let resolveEnded!: () => void;
  const endedP = new Promise<void>((r) => {
    resolveEnded = r;
  });
  const markEnded = (): void => {
    ended = true;
    resolveEnded();
  };
  stream.on('error', () => {});
  stream.on('end', markEnded);
  stream.on('close', markEnded);
  const responseHeaders = await withTimeout(
    new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('close', () => reject(new Error('stream closed before the response')));
    }),
    5000,
    'h2 response',
  );
  stream.on('data', (c: Buffer) => reader.push(c));
  const status = Number(responseHeaders[':status']);
  let response = `HTTP/2 ${status}\r\n`;
  for (const [k, v] of Object.entries(responseHeaders)) if (!k.startsWith(':')) response += `${k}: ${v}\r\n`;
  if (status !== (opts.expectStatus ?? 200)) throw new Error(`Unexpected handshake response: ${response}`);
  return {
    socket: stream as unknown as net.Socket,
    reader,
    response,
    ended: endedP,
    isEnded: () => ended,
    write: (...frames) => {
      for (const f of frames) stream.write(f);
    },
    frames: async (n, timeoutMs = 10_000) => {
      await waitFor(() => reader.frames.length >= n, timeoutMs, `${n} frames`);
      return reader.frames;
    },
    closed: async (timeoutMs = 10_000) => {
      await waitFor(() => reader.frames.some((f) => f.opcode === 8), timeoutMs, 'close frame');
      const close = reader.frames.find((f) => f.opcode === 8)!;
      if (!stream.destroyed) {
        stream.write(frame({ opcode: 8, payload: close.payload.subarray(0, 2) }));
        stream.end();
      }
      await withTimeout(endedP, timeoutMs, 'END_STREAM from server');
      const code = close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
      return { code, reason: close.payload.subarray(2).toString(), frames: reader.frames };
    },
  };
}

export async function echoTarget(
  transport: Transport,
  options: CreateServerOptions,
): Promise<ConformanceTarget> {
  if (transport === 'http/1.1') {
    const { server, port } = await echoServer(options);
    return { server, open: (opts) => rawClient(port, opts), close: () => server.close() };
  }
  tls ??= makeCert();
  const { server: h2, origin } = await h2Server(tls);
  const wss = new WebSocketServer(options);
  wss.attachH2(h2);
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary }).catch(() => {});
    });
  });
  const session = await h2Session(origin, tls.cert);
  return {
    server: wss,
    open: (opts = {}) => rawH2Client(session, opts),
    close: async () => {
      session.close();
      await wss.close();
      await new Promise<void>((resolve) => h2.close(() => resolve()));
    },
  };
}
