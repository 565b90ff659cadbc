import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createClient } from 'redis';
import { waitFor } from './clients.js';

/**
 * Raw sockets for tests that must control exactly when bytes go out and when the connection
 * drops: pipelined input before the server's welcome, drops in the middle of session start-up.
 */
export interface RawConn {
  readonly socket: Socket;
  /** Everything received so far, decoded as UTF-8. */
  text(): string;
  /** Everything received so far, as bytes (binary WebSocket framing). */
  bytes(): Buffer;
  /** Resolves when the peer closed (or the socket errored). */
  readonly closed: Promise<void>;
}

function wrap(socket: Socket): RawConn {
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
  });
  const bytes = () => Buffer.concat(chunks);
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.on('error', () => {});
  });
  return { socket, text: () => bytes().toString('utf8'), bytes, closed };
}

/** A plain TCP connection; `first` is written in the same tick as the connect (pipelined). */
export function rawTcp(port: number, first?: string | Buffer): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => resolve(wrap(s)));
    if (first !== undefined) s.write(first);
    s.once('error', reject);
  });
}

/** A TLS connection to the dev-CA server (certificate not checked: only the framing matters). */
export function rawTls(port: number, first?: string | Buffer): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      if (first !== undefined) s.write(first);
      resolve(wrap(s));
    });
    s.once('error', reject);
  });
}

/** One masked client text frame (RFC 6455 §5.2), for payloads under 64 KiB. */
export function wsTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const mask = randomBytes(4);
  const head =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([head, mask, body]);
}

/** The HTTP upgrade request for /ws with a same-origin Origin header. */
export function wsUpgrade(port: number): string {
  return (
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`
  );
}

/** Unmasked server text frames out of a raw stream (after the 101 response). */
export function wsServerTexts(bytes: Buffer): string[] {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return [];
  const out: string[] = [];
  let i = end + 4;
  while (i + 2 <= bytes.length) {
    const op = bytes[i]! & 0x0f;
    let len = bytes[i + 1]! & 0x7f;
    let at = i + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > bytes.length) break;
    if (op === 1) out.push(bytes.subarray(at, at + len).toString('utf8'));
    i = at + len;
  }
  return out;
}

/** A plain Redis client for inspecting keys and injecting faults (DEBUG SLEEP, maxmemory). */
export async function redisAdmin(url: string) {
  const c = createClient({ url, RESP: 2 });
  c.on('error', () => {});
  await c.connect();
  return {
    cmd: (...args: string[]) => c.sendCommand(args) as Promise<unknown>,
    close: () => c.close(),
  };
}

/** Read /metrics and return chat_connections summed over transports. */
export async function connectionsGauge(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^chat_connections\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

export { waitFor };
