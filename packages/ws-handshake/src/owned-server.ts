import http from 'node:http';
import https from 'node:https';
import type { TlsOptions } from 'node:tls';

/** Body of the answer to plain HTTP requests on a server that only speaks WebSocket. */
const BODY = 'This endpoint speaks WebSocket only.\n';

function onPlainRequest(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(426, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(BODY),
    Upgrade: 'websocket',
    Connection: 'Upgrade, close',
    'Sec-WebSocket-Version': '13',
  });
  res.end(BODY);
}

/** An HTTP(S) server owned by a `WebSocketServer`: plain requests get 426 Upgrade Required. */
export function createOwnedServer(tlsOptions: TlsOptions | undefined): http.Server | https.Server {
  return tlsOptions !== undefined
    ? https.createServer(tlsOptions, onPlainRequest)
    : http.createServer(onPlainRequest);
}
