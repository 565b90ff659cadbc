import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway self-signed certificate for localhost/127.0.0.1 (made with openssl, as in tls-ipv6.test.ts). */
export function makeCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'ws-h2-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A listening node:http2 secure server that advertises RFC 8441 (unless told not to). */
export async function h2Server(
  tls: { key: Buffer; cert: Buffer },
  enableConnectProtocol = true,
): Promise<{ server: http2.Http2SecureServer; port: number; origin: string }> {
  const server = http2.createSecureServer({ ...tls, settings: { enableConnectProtocol } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, port, origin: `https://127.0.0.1:${port}` };
}

/** A client session whose remote SETTINGS have arrived. */
export async function h2Session(origin: string, ca: Buffer): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(origin, { ca, servername: 'localhost' });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

/** Send an extended CONNECT by hand and wait for the response headers. */
export function rawConnect(
  session: http2.ClientHttp2Session,
  path: string,
  extra: http2.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; stream: http2.ClientHttp2Stream }> {
  const stream = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': path,
      ':authority': 'localhost',
      'sec-websocket-version': '13',
      ...extra,
    },
    { endStream: false },
  );
  return new Promise((resolve, reject) => {
    stream.once('response', (headers) => resolve({ status: Number(headers[':status']), headers, stream }));
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`stream closed before a response (rst ${stream.rstCode})`)));
  });
}

/** Read a refused stream's body to its end. */
export function readBody(stream: http2.ClientHttp2Stream): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.once('error', reject);
  });
}
