import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

/*
 * An independent, Autobahn-style peer for auditing the runnable examples as real processes.
 * Nothing here imports the package: frames are built and parsed by hand, compression goes
 * through plain zlib calls, so a bug in the package cannot hide itself in the harness.
 */

export const pkgDir = fileURLToPath(new URL('..', import.meta.url));

export function ensureBuilt(): void {
  if (!existsSync(`${pkgDir}dist/index.js`))
    execFileSync('pnpm', ['exec', 'tsup'], { cwd: pkgDir, stdio: 'ignore' });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

export interface Child {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
  kill: () => void;
}

/** Start a node process (a script path or an inline ESM module) with output captured. */
export function startNode(args: string[], cwd = pkgDir): Child {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Start an echo server process and wait for the ws:// URL it prints; returns its port. */
export async function startEchoServer(args: string[]): Promise<{ proc: Child; port: number }> {
  const proc = startNode(args);
  await until(() => /ws:\/\/[^\s]+:(\d+)/.test(proc.output()), 15_000, `listening line of ${args.join(' ')}`);
  const port = Number(/ws:\/\/[^\s]+:(\d+)/.exec(proc.output())![1]);
  return { proc, port };
}

/** `ws` as the anchor echo server, in its own process like ours. */
export const WS_ECHO_SERVER = `
import { WebSocketServer } from 'ws';
const deflate = process.argv.includes('--deflate');
// maxFragments 0: ws caps fragments at 16384 by default, which Autobahn 9.3.1 (65536) exceeds.
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 64 * 1024 * 1024,
  maxFragments: 0, perMessageDeflate: deflate ? { threshold: 0 } : false });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => console.log('listening on ws://127.0.0.1:' + wss.address().port));
`;

// ------------------------------------------------------------------ frames

export const Op = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  mask?: boolean;
  /** Declare this payload length in the header instead of the real one. */
  declaredLength?: number;
}

/** XOR with a 4-byte key, word at a time where possible (16 MiB payloads must not crawl). */
function maskInto(src: Buffer, dst: Buffer, key: Buffer): void {
  const n = src.length;
  const k = key.readUInt32LE(0);
  let i = 0;
  if (n >= 4 && src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    const words = n >>> 2;
    const s = new Uint32Array(src.buffer, src.byteOffset, words);
    const d = new Uint32Array(dst.buffer, dst.byteOffset, words);
    for (let w = 0; w < words; w++) d[w] = s[w]! ^ k;
    i = words << 2;
  }
  for (; i < n; i++) dst[i] = src[i]! ^ key[i & 3]!;
}

export function encode(
  opcode: number,
  payload: Buffer | string = Buffer.alloc(0),
  o: FrameOptions = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = o.mask ?? true;
  const len = o.declaredLength ?? data.length;
  const headLen = (len < 126 ? 2 : len < 65536 ? 4 : 10) + (mask ? 4 : 0);
  // Header and payload in one aligned allocation so masking can go word by word.
  const pad = (4 - (headLen % 4)) % 4;
  const store = Buffer.alloc(pad + headLen + data.length);
  const out = store.subarray(pad);
  out[0] = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  const m = mask ? 0x80 : 0;
  let off = 2;
  if (len < 126) out[1] = m | len;
  else if (len < 65536) {
    out[1] = m | 126;
    out.writeUInt16BE(len, 2);
    off = 4;
  } else {
    out[1] = m | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
    off = 10;
  }
  if (mask) {
    const key = randomBytes(4);
    key.copy(out, off);
    off += 4;
    maskInto(data, out.subarray(off), key);
  } else {
    data.copy(out, off);
  }
  return out;
}

/** Frame reader with a chunk list: no concatenation of everything buffered per read. */
export class Reader {
  readonly frames: Frame[] = [];
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes of data-frame payload received so far (progress of large messages). */
  payloadBytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.size < 2) return;
      const head = this.peek(Math.min(this.size, 14));
      const b1 = head[1]!;
      let len = b1 & 127;
      let off = 2;
      if (len === 126) {
        if (head.length < 4) return;
        len = head.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (head.length < 10) return;
        len = Number(head.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 128) !== 0;
      if (masked) off += 4;
      if (this.size < off + len) return;
      const all = this.consume(off + len);
      const payload = Buffer.from(all.subarray(off));
      if (masked) maskInto(payload, payload, all.subarray(off - 4, off));
      const b0 = all[0]!;
      if ((b0 & 15) < 8) this.payloadBytes += len;
      this.frames.push({ fin: (b0 & 128) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 15, masked, payload });
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private consume(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.size -= n;
    return out;
  }
}

/** A close payload: code and reason. */
export function closeBody(code: number, reason: string | Buffer = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** Compress one message as a fresh raw deflate stream with the RFC 7692 trailer removed. */
export function deflateMessage(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/**
 * Compresses messages as one raw deflate stream (context takeover, as Autobahn's side does by
 * default): later messages may reference earlier ones.
 */
export class ContextDeflater {
  private readonly stream: zlib.DeflateRaw;
  private readonly out: Buffer[] = [];
  constructor(windowBits = 15) {
    this.stream = zlib.createDeflateRaw({ windowBits });
    this.stream.on('data', (c: Buffer) => this.out.push(c));
  }
  compress(data: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.stream.write(data);
      this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const all = Buffer.concat(this.out.splice(0));
        resolve(all.subarray(0, all.length - 4));
      });
    });
  }
  close(): void {
    this.stream.close();
  }
}

/**
 * Inflates a peer's compressed messages. With context takeover, the last 32 KiB of output is
 * the next message's preset dictionary, which is exactly the sliding window the peer may
 * reference.
 */
export class StreamInflater {
  private history: Buffer = Buffer.alloc(0);
  constructor(
    private readonly contextTakeover: boolean,
    private readonly windowBits = 15,
  ) {}
  inflate(payload: Buffer): Buffer {
    const msg = Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]);
    const options: zlib.ZlibOptions = {
      windowBits: this.windowBits,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    };
    if (this.contextTakeover && this.history.length > 0) options.dictionary = this.history;
    const out = zlib.inflateRawSync(msg, options);
    if (this.contextTakeover) {
      const all = Buffer.concat([this.history, out]);
      this.history = all.subarray(Math.max(0, all.length - 32768));
    }
    return out;
  }
}

// ------------------------------------------------------------------ the fuzzing client role

export interface Message {
  opcode: number;
  data: Buffer;
  compressed: boolean;
}

/** One Autobahn-style connection to a server under test. */
export class Peer {
  readonly socket: net.Socket;
  readonly reader = new Reader();
  response = '';
  extensions = '';
  /** The server sent FIN (or the socket closed) before we ended our side. */
  serverClosedFirst = false;
  /** TCP ended (FIN or close). */
  ended = false;
  reset = false;
  weEnded = false;
  endedAt = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  static async open(
    port: number,
    headers: Record<string, string> = {},
    path = '/',
    /** Bytes written in the same write as the request (frames sent before the 101 arrives). */
    early: Buffer | null = null,
    upgrade = 'websocket',
  ): Promise<Peer> {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new Peer(socket);
    const key = randomBytes(16).toString('base64');
    let req = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n`;
    req += `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
    socket.write(early === null ? `${req}\r\n` : Buffer.concat([Buffer.from(`${req}\r\n`), early]));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') peer.reset = true;
    });
    const markEnd = () => {
      if (!peer.ended) {
        peer.ended = true;
        peer.endedAt = Date.now();
        if (!peer.weEnded) peer.serverClosedFirst = true;
      }
    };
    socket.on('end', markEnd);
    socket.on('close', markEnd);
    await new Promise<void>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error('handshake timeout')), 10_000);
      const onData = (chunk: Buffer) => {
        acc = Buffer.concat([acc, chunk]);
        const idx = acc.indexOf('\r\n\r\n');
        if (idx === -1) return;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        peer.response = acc.subarray(0, idx).toString('latin1');
        socket.on('data', (c: Buffer) => peer.reader.push(c));
        if (acc.length > idx + 4) peer.reader.push(acc.subarray(idx + 4));
        resolve();
      };
      socket.on('data', onData);
    });
    const status = Number(peer.response.split(' ')[1]);
    if (status !== 101) throw new Error(`Handshake failed: ${peer.response}`);
    const expected = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (!peer.response.includes(`Sec-WebSocket-Accept: ${expected}`) && !peer.response.includes(expected)) {
      throw new Error('Bad Sec-WebSocket-Accept');
    }
    const ext = /^sec-websocket-extensions:\s*(.*)$/im.exec(peer.response);
    peer.extensions = ext ? ext[1]!.trim() : '';
    return peer;
  }

  send(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }

  /** Write bytes in pieces of `size`, each a separate write, optionally spaced in time. */
  async sendChopped(bytes: Buffer, size: number, delayMs = 0): Promise<void> {
    for (let i = 0; i < bytes.length; i += size) {
      this.socket.write(bytes.subarray(i, i + size));
      if (delayMs > 0) await sleep(delayMs);
    }
  }

  get frames(): Frame[] {
    return this.reader.frames;
  }

  closeFrame(): Frame | undefined {
    return this.reader.frames.find((f) => f.opcode === Op.close);
  }

  closeCode(): number | undefined {
    const c = this.closeFrame();
    if (c === undefined) return undefined;
    return c.payload.length >= 2 ? c.payload.readUInt16BE(0) : 1005;
  }

  /** Data messages reassembled from the frames received so far. */
  messages(inflater?: StreamInflater): Message[] {
    const out: Message[] = [];
    let parts: Buffer[] = [];
    let opcode = 0;
    let compressed = false;
    for (const f of this.reader.frames) {
      if (f.opcode >= 8) continue;
      if (f.opcode !== Op.cont) {
        opcode = f.opcode;
        compressed = (f.rsv & 4) !== 0;
        parts = [];
      }
      parts.push(f.payload);
      if (f.fin) {
        let data: Buffer = Buffer.concat(parts);
        if (compressed) {
          if (inflater === undefined) throw new Error('compressed message without an inflater');
          data = inflater.inflate(data);
        }
        out.push({ opcode, data, compressed });
      }
    }
    return out;
  }

  async waitMessages(n: number, timeoutMs = 10_000): Promise<void> {
    await until(
      () => this.reader.frames.filter((f) => f.opcode < 8 && f.fin).length >= n || this.ended,
      timeoutMs,
      `${n} messages`,
    );
  }

  async waitClose(timeoutMs = 10_000): Promise<number> {
    await until(() => this.closeFrame() !== undefined || this.ended, timeoutMs, 'close frame');
    const code = this.closeCode();
    if (code === undefined) throw new Error('TCP closed without a close frame');
    return code;
  }

  /**
   * Autobahn's closing for a passing case: we send close 1000, the server must echo 1000 and
   * then drop TCP itself (the client never ends first). Returns the server's close code.
   */
  async closeNormally(
    timeoutMs = 10_000,
  ): Promise<{ code: number | undefined; serverDropped: boolean; dropMs: number }> {
    if (!this.socket.destroyed) this.socket.write(encode(Op.close, closeBody(1000)));
    await until(() => this.closeFrame() !== undefined || this.ended, timeoutMs, 'close reply');
    const seen = Date.now();
    await until(() => this.ended, timeoutMs, 'server TCP close');
    // How long the server kept TCP open after its close frame (Autobahn notes slow drops).
    return { code: this.closeCode(), serverDropped: this.serverClosedFirst, dropMs: this.endedAt - seen };
  }

  /**
   * Autobahn's closing when the server must fail the connection: wait for its close frame,
   * answer it, then the server must drop TCP.
   */
  async expectFailure(timeoutMs = 10_000): Promise<{ code: number; serverDropped: boolean }> {
    const code = await this.waitClose(timeoutMs);
    if (!this.socket.destroyed) this.socket.write(encode(Op.close, closeBody(code === 1005 ? 1000 : code)));
    await until(() => this.ended, timeoutMs, 'server TCP close');
    return { code, serverDropped: this.serverClosedFirst };
  }

  destroy(): void {
    this.weEnded = true;
    this.socket.destroy();
  }
}
