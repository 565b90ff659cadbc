import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import {
  createWebSocketServer,
  type CreateServerOptions,
  type WebSocket,
  type WebSocketServer,
} from '../src/index.js';

/** Wait for `predicate` with a bounded number of polls. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out: ${what}`)), ms);
    }),
  ]);
}

/** An echo server on a free port: text back as text, binary as binary. */
export async function echoServer(
  options: CreateServerOptions = {},
): Promise<{ server: WebSocketServer; port: number; sockets: WebSocket[] }> {
  const server = await createWebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  const sockets: WebSocket[] = [];
  server.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary }).catch(() => {});
    });
  });
  return { server, port: server.port!, sockets };
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv?: number;
  mask?: boolean;
}

/** Build a frame by hand, independently of the package's sender. */
export function frame({
  opcode,
  payload = Buffer.alloc(0),
  fin = true,
  rsv = 0,
  mask = true,
}: FrameSpec): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = data.length;
  const parts: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126) parts.push(m | len);
  else if (len < 65536) parts.push(m | 126, len >> 8, len & 255);
  else {
    parts.push(m | 127, 0, 0, 0, 0);
    parts.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  }
  let body = data;
  if (mask) {
    const key = randomBytes(4);
    parts.push(...key);
    body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = data[i]! ^ key[i & 3]!;
  }
  return Buffer.concat([Buffer.from(parts), body]);
}

export interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Minimal independent frame reader for the test side. */
export class FrameReader {
  private buf = Buffer.alloc(0);
  readonly frames: ParsedFrame[] = [];
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 127;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 128) !== 0;
      let key: Buffer | null = null;
      if (masked) {
        if (this.buf.length < off + 4) return;
        key = this.buf.subarray(off, off + 4);
        off += 4;
      }
      if (this.buf.length < off + len) return;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      if (key) for (let i = 0; i < len; i++) payload[i]! ^= key[i & 3]!;
      this.frames.push({ fin: (b0 & 128) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 15, masked, payload });
      this.buf = this.buf.subarray(off + len);
    }
  }
}

export interface RawClient {
  socket: net.Socket;
  reader: FrameReader;
  response: string;
  /** Resolves when the server closed TCP (end or close). */
  ended: Promise<void>;
  isEnded(): boolean;
  write(...frames: Buffer[]): void;
  /** Wait until at least `n` frames arrived. */
  frames(n: number, timeoutMs?: number): Promise<ParsedFrame[]>;
  /** Wait for the server's close frame and TCP close; returns the close code (1005 for none). */
  closed(timeoutMs?: number): Promise<{ code: number; reason: string; frames: ParsedFrame[] }>;
}

/** Connect with a hand-written handshake; throws unless the server answers 101. */
export async function rawClient(
  port: number,
  opts: { path?: string; headers?: Record<string, string>; expectStatus?: number } = {},
): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const key = randomBytes(16).toString('base64');
  const headers: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...opts.headers,
  };
  let req = `GET ${opts.path ?? '/'} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (v !== '') req += `${k}: ${v}\r\n`;
  socket.write(`${req}\r\n`);
  const reader = new FrameReader();
  let ended = false;
  let resolveEnded!: () => void;
  const endedP = new Promise<void>((r) => {
    resolveEnded = r;
  });
  const response = await withTimeout(
    new Promise<string>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        acc = Buffer.concat([acc, chunk]);
        const idx = acc.indexOf('\r\n\r\n');
        if (idx === -1) return;
        socket.removeListener('data', onData);
        const head = acc.subarray(0, idx).toString('latin1');
        const rest = acc.subarray(idx + 4);
        socket.on('data', (c: Buffer) => reader.push(c));
        if (rest.length > 0) reader.push(rest);
        resolve(head);
      };
      socket.on('data', onData);
      socket.once('error', reject);
    }),
    5000,
    'handshake response',
  );
  socket.on('error', () => {});
  const markEnded = () => {
    ended = true;
    resolveEnded();
  };
  socket.on('end', markEnded);
  socket.on('close', markEnded);
  const status = Number(response.split(' ')[1]);
  if (status !== (opts.expectStatus ?? 101)) throw new Error(`Unexpected handshake response: ${response}`);
  const client: RawClient = {
    socket,
    reader,
    response,
    ended: endedP,
    isEnded: () => ended,
    write: (...frames) => {
      for (const f of frames) socket.write(f);
    },
    frames: async (n, timeoutMs = 10_000) => {
      await waitFor(() => reader.frames.length >= n, timeoutMs, `${n} frames`);
      return reader.frames;
    },
    closed: async (timeoutMs = 10_000) => {
      await waitFor(() => reader.frames.some((f) => f.opcode === 8), timeoutMs, 'close frame');
      const close = reader.frames.find((f) => f.opcode === 8)!;
      // A peer that got our close frame answers; echo it as a client would.
      if (!socket.destroyed) socket.write(frame({ opcode: 8, payload: close.payload.subarray(0, 2) }));
      await withTimeout(endedP, timeoutMs, 'TCP close from server');
      const code = close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
      return { code, reason: close.payload.subarray(2).toString(), frames: reader.frames };
    },
  };
  return client;
}

/** Send a raw HTTP request and return the response head and body. */
export async function rawRequest(port: number, request: string): Promise<{ status: number; head: string }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(request);
  let acc = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => {
    acc += c;
  });
  socket.on('error', () => {});
  await withTimeout(
    new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('end', () => resolve());
    }),
    5000,
    'response',
  );
  socket.destroy();
  return { status: Number(acc.split(' ')[1]), head: acc };
}

export const Op = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** zlib's output chunk (Z_DEFAULT_CHUNK): how far past a limit one inflate step can go. */
export const INFLATE_CHUNK = zlib.constants.Z_DEFAULT_CHUNK;

/**
 * A raw-deflate message (without the 00 00 ff ff trailer, as permessage-deflate sends it) that
 * inflates to `mebibytes` MiB of zeros, built without allocating them: one 1 MiB block, then the
 * same back-reference-only block repeated (it refers to the zeros already in the window).
 * About 1 KiB on the wire per MiB inflated.
 */
export function zipBomb(mebibytes: number): Buffer {
  const block = Buffer.alloc(1024 * 1024);
  const sync = { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const first = zlib.deflateRawSync(block, sync);
  const next = zlib.deflateRawSync(block, { ...sync, dictionary: Buffer.alloc(32 * 1024) });
  const bomb = Buffer.concat([first, ...Array.from({ length: mebibytes - 1 }, () => next)]);
  return bomb.subarray(0, bomb.length - 4);
}
