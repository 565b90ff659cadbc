import * as http2 from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on an open node:http2 session; resolves with the whole response. */
export function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () =>
      resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString() }),
    );
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

// ------------------------------------------------------------------ raw frames (RFC 9113 §4)

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
};
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

/** A header block of "literal without indexing, new name" fields: no state, no Huffman. */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0x00]), hpackInt(name.length, 7, 0), Buffer.from(name, 'latin1'));
    parts.push(hpackInt(Buffer.byteLength(value), 7, 0), Buffer.from(value, 'latin1'));
  }
  return Buffer.concat(parts);
}

export function headersFrame(streamId: number, fields: [string, string][], endStream = true): Buffer {
  return frame(
    FRAME.HEADERS,
    FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0),
    streamId,
    headerBlock(fields),
  );
}

/** A header block split into HEADERS + CONTINUATION frames of at most `size` bytes each. */
export function splitHeaders(streamId: number, fields: [string, string][], size = 8192): Buffer {
  const block = headerBlock(fields);
  const out: Buffer[] = [];
  for (let o = 0; o < block.length; o += size) {
    const last = o + size >= block.length;
    const type = o === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
    const flags = (last ? FLAG.END_HEADERS : 0) | (o === 0 ? FLAG.END_STREAM : 0);
    out.push(frame(type, flags, streamId, block.subarray(o, o + size)));
  }
  return Buffer.concat(out);
}

export function rstFrame(streamId: number, code = 8 /* CANCEL */): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

export const settingsFrame = (): Buffer => frame(FRAME.SETTINGS, 0, 0);
export const settingsAck = (): Buffer => frame(FRAME.SETTINGS, FLAG.ACK, 0);
export const pingFrame = (n: number): Buffer => {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(n, 4);
  return frame(FRAME.PING, 0, 0, payload);
};

export function getRequest(streamId: number, path: string, authority = 'localhost'): Buffer {
  return headersFrame(streamId, [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ]);
}

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A raw h2c connection that records every frame the server sends and when it closed. */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  readonly socket: Socket;
  readonly #closedPromise: Promise<void>;

  /** `ackSettings: false` plays a client that never acknowledges the server's SETTINGS. */
  constructor(
    port: number,
    tls?: { ca: string },
    readonly ackSettings = true,
  ) {
    this.socket = tls
      ? tlsConnect({ port, host: '127.0.0.1', ca: tls.ca, ALPNProtocols: ['h2'], servername: 'localhost' })
      : netConnect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => this.#parse(d));
    this.socket.on('error', () => {});
    this.#closedPromise = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
    this.socket.write(Buffer.concat([PREFACE, settingsFrame()]));
  }

  #parse(data: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, data]);
    while (this.#buf.length >= 9) {
      const length = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + length) return;
      const f: RawFrame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buf.subarray(9, 9 + length),
      };
      this.frames.push(f);
      // Acknowledge the server's SETTINGS so it behaves as with any client.
      if (
        this.ackSettings &&
        f.type === FRAME.SETTINGS &&
        (f.flags & FLAG.ACK) === 0 &&
        !this.socket.destroyed
      )
        this.socket.write(settingsAck());
      this.#buf = this.#buf.subarray(9 + length);
    }
  }

  /** Resolves once the server's first SETTINGS frame has arrived (and been acknowledged). */
  async settled(): Promise<void> {
    for (let i = 0; i < 100 && !this.frames.some((f) => f.type === FRAME.SETTINGS); i++)
      await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 50));
  }

  /** Writes, ignoring failures once the server has closed the socket. */
  write(data: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    return this.socket.write(data);
  }

  /** Resolves true once the server closes the socket, false after `ms`. */
  waitClosed(ms: number): Promise<boolean> {
    return Promise.race([
      this.#closedPromise.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
    ]);
  }

  /** The error code of the GOAWAY the server sent, or undefined. */
  goawayCode(): number | undefined {
    const g = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return g === undefined ? undefined : g.payload.readUInt32BE(4);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens an h2 session (TLS when `ca` is given, else h2c) and waits until it is connected. */
export function openSession(port: number, ca?: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = ca
      ? http2.connect(`https://localhost:${port}`, { ca })
      : http2.connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}
