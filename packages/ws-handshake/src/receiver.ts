import { EMPTY_BUFFER, isValidWireCloseCode, Opcode } from './constants.js';
import {
  InvalidCloseCodeError,
  InvalidUtf8Error,
  MessageTooBigError,
  ProtocolError,
  type WebSocketError,
} from './errors.js';
import { applyMask } from './mask.js';
import { isValidUtf8, UTF8_ACCEPT, UTF8_REJECT, utf8Feed } from './utf8.js';

/** Receives what the parser decodes. Called synchronously from `push()`. */
export interface ReceiverSink {
  /** A complete message: text as a UTF-8-validated `string`, binary as a `Buffer`. */
  onMessage(data: string | Buffer, isBinary: boolean): void;
  /** A ping frame arrived; the owner answers with a pong carrying `data`. */
  onPing(data: Buffer): void;
  /** A pong frame arrived (an answer to our ping, or unsolicited). */
  onPong(data: Buffer): void;
  /** A valid close frame; `code` is 1005 when the frame carried no status. */
  onClose(code: number, reason: string): void;
  /** The stream violated the protocol; the receiver is dead afterwards. */
  onError(error: WebSocketError): void;
  /**
   * Parsing waits for the inflater (`true`) or resumed (`false`): a transport should stop
   * reading meanwhile, so input cannot pile up behind a slow decompression.
   */
  onBusy?(busy: boolean): void;
}

/**
 * Decompressor for RSV1 (permessage-deflate) messages. One call is outstanding at a time; the
 * callback may be asynchronous. `limit` is how many decompressed bytes may still be produced.
 */
export interface FrameInflater {
  /** Inflates one frame's payload (`fin` marks the message end); calls back with the bytes or an error. */
  decompress(
    data: Buffer,
    fin: boolean,
    limit: number,
    callback: (error: WebSocketError | null, data: Buffer | null) => void,
  ): void;
}

/** Options of a {@link Receiver}: which side it parses for, the size limit and the inflater. */
export interface ReceiverOptions {
  /** Server side: frames must be masked. Client side: frames must not be. */
  isServer: boolean;
  maxPayload: number;
  /** Present when permessage-deflate was negotiated: RSV1 is then allowed on first frames. */
  inflater?: FrameInflater | null;
  /** Deliver text messages as their (validated) UTF-8 bytes instead of a decoded string. @default false */
  textAsBuffer?: boolean;
}

// Shared empty placeholder (never pushed to): the fragment list is created on first use.
const NO_FRAGMENTS: Buffer[] = [];

/** Pieces below this size are copied into the staging buffer instead of kept as views. */
const SMALL_PIECE = 1024;
const STAGING_SIZE = 16 * 1024;

const GET_INFO = 0;
const GET_LENGTH_16 = 1;
const GET_LENGTH_64 = 2;
const GET_MASK = 3;
const GET_DATA = 4;
const INFLATING = 5;
const DEAD = 6;

/**
 * Sans-I/O RFC 6455 frame parser. Bytes go in with `push()`, decoded messages and control frames
 * come out through the sink. Input is kept as a list of chunks with a read cursor, so nothing is
 * concatenated until a frame really spans chunks. Data frame payloads are consumed as they
 * arrive, so text is validated (and fails) as early as the bytes allow and memory never exceeds
 * `maxPayload` plus one socket read.
 */
export class Receiver {
  private readonly sink: ReceiverSink;
  private readonly isServer: boolean;
  private readonly maxPayload: number;
  private readonly inflater: FrameInflater | null;
  private readonly textAsBuffer: boolean;

  private chunks: Buffer[] = [];
  private pos = 0;
  private buffered = 0;
  private state = GET_INFO;

  private fin = false;
  private opcode = 0;
  private masked = false;
  private payloadLength = 0;
  private remaining = 0;
  // Allocated on the first masked frame: idle connections carry nothing they do not use.
  private mask: Buffer = EMPTY_BUFFER;
  private maskOffset = 0;

  /** Opcode of the message being assembled, 0 when between messages. */
  private messageOpcode = 0;
  private messageCompressed = false;
  /** Bytes on the wire for the current message (compressed, if it is). */
  private wireLength = 0;
  /** Decoded bytes of the current message. */
  private messageLength = 0;
  private fragments: Buffer[] = NO_FRAGMENTS;
  /** Payload pieces of the compressed frame being received. */
  private frameParts: Buffer[] = NO_FRAGMENTS;
  private staging: Buffer = EMPTY_BUFFER;
  private stagingStart = 0;
  private stagingEnd = 0;
  private stagingOwner: Buffer[] | null = null;
  private utf8State = UTF8_ACCEPT;
  /** Held by the transport (`pause()`): input is kept, nothing is decoded. */
  private held = false;
  private running = false;

  private readonly onInflatedBound: ((error: WebSocketError | null, data: Buffer | null) => void) | null;

  constructor(sink: ReceiverSink, options: ReceiverOptions) {
    this.sink = sink;
    this.isServer = options.isServer;
    this.maxPayload = options.maxPayload;
    this.inflater = options.inflater ?? null;
    this.textAsBuffer = options.textAsBuffer === true;
    this.onInflatedBound = this.inflater === null ? null : this.onInflated.bind(this);
  }

  /** Bytes received but not yet decoded. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feeds bytes as they arrive; decoded frames go to the sink synchronously, in order. */
  push(chunk: Buffer): void {
    if (this.state === DEAD || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.state !== INFLATING) this.run();
  }

  /**
   * Stop decoding at the next frame boundary (or inside the frame being read) and keep what
   * arrives. A transport holds the parser when the frame it just handled made it stop reading,
   * so the rest of the chunk already read cannot produce more replies.
   */
  pause(): void {
    this.held = true;
  }

  /** Decode what was kept while held. */
  resume(): void {
    if (!this.held) return;
    this.held = false;
    if (!this.running && this.state !== INFLATING && this.state !== DEAD) this.run();
  }

  /** Stop parsing and drop everything buffered. */
  destroy(): void {
    this.state = DEAD;
    this.chunks = [];
    this.fragments = NO_FRAGMENTS;
    this.frameParts = NO_FRAGMENTS;
    this.stagingOwner = null;
    this.staging = EMPTY_BUFFER;
    this.buffered = 0;
  }

  private run(): void {
    if (this.held || this.running) return;
    this.running = true;
    try {
      this.decode();
    } finally {
      this.running = false;
    }
  }

  private decode(): void {
    while (!this.held) {
      switch (this.state) {
        case GET_INFO:
          if (!this.getInfo()) return;
          break;
        case GET_LENGTH_16:
          if (this.buffered < 2) return;
          this.payloadLength = (this.readByte() << 8) | this.readByte();
          if (!this.afterLength()) return;
          break;
        case GET_LENGTH_64:
          if (!this.getLength64()) return;
          break;
        case GET_MASK:
          if (this.buffered < 4) return;
          if (this.mask.length === 0) this.mask = Buffer.alloc(4);
          this.mask[0] = this.readByte();
          this.mask[1] = this.readByte();
          this.mask[2] = this.readByte();
          this.mask[3] = this.readByte();
          this.state = GET_DATA;
          break;
        case GET_DATA:
          if (!this.getData()) return;
          break;
        default:
          return;
      }
    }
  }

  private readByte(): number {
    const chunk = this.chunks[0]!;
    const b = chunk[this.pos++]!;
    if (this.pos === chunk.length) {
      this.chunks.shift();
      this.pos = 0;
    }
    this.buffered--;
    return b;
  }

  /** Take `n` (<= buffered) bytes: a view when they sit in one chunk, a copy otherwise. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    const avail = first.length - this.pos;
    if (n <= avail) {
      const out = first.subarray(this.pos, this.pos + n);
      if (n === avail) {
        this.chunks.shift();
        this.pos = 0;
      } else {
        this.pos += n;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length - this.pos, n - off);
      chunk.copy(out, off, this.pos, this.pos + count);
      off += count;
      if (this.pos + count === chunk.length) {
        this.chunks.shift();
        this.pos = 0;
      } else {
        this.pos += count;
      }
    }
    return out;
  }

  private fail(error: WebSocketError): false {
    this.destroy();
    this.sink.onError(error);
    return false;
  }

  private getInfo(): boolean {
    if (this.buffered < 2) return false;
    const b0 = this.readByte();
    const b1 = this.readByte();
    if ((b0 & 0x30) !== 0) return this.fail(new ProtocolError('RSV2 and RSV3 must be clear'));
    const fin = (b0 & 0x80) !== 0;
    const compressed = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    this.fin = fin;
    this.opcode = opcode;
    this.masked = (b1 & 0x80) !== 0;
    this.payloadLength = b1 & 0x7f;

    if (compressed && this.inflater === null) {
      return this.fail(new ProtocolError('RSV1 must be clear without a negotiated extension'));
    }
    if (opcode === Opcode.Continuation) {
      if (compressed) return this.fail(new ProtocolError('RSV1 must be clear on continuation frames'));
      if (this.messageOpcode === 0)
        return this.fail(new ProtocolError('Continuation frame without a message'));
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.messageOpcode !== 0) {
        return this.fail(new ProtocolError('New data frame while a fragmented message is in progress'));
      }
      this.messageOpcode = opcode;
      this.messageCompressed = compressed;
    } else if (opcode === Opcode.Close || opcode === Opcode.Ping || opcode === Opcode.Pong) {
      if (!fin) return this.fail(new ProtocolError('Control frames must not be fragmented'));
      if (compressed) return this.fail(new ProtocolError('RSV1 must be clear on control frames'));
      if (this.payloadLength > 125) {
        return this.fail(new ProtocolError('Control frame payload longer than 125 bytes'));
      }
    } else {
      return this.fail(new ProtocolError(`Reserved opcode 0x${opcode.toString(16)}`));
    }
    if (this.masked !== this.isServer) {
      return this.fail(
        new ProtocolError(
          this.isServer ? 'Client frames must be masked' : 'Server frames must not be masked',
        ),
      );
    }
    if (this.payloadLength === 126) {
      this.state = GET_LENGTH_16;
      return true;
    }
    if (this.payloadLength === 127) {
      this.state = GET_LENGTH_64;
      return true;
    }
    return this.afterLength();
  }

  private getLength64(): boolean {
    if (this.buffered < 8) return false;
    const hi =
      ((this.readByte() << 24) | (this.readByte() << 16) | (this.readByte() << 8) | this.readByte()) >>> 0;
    const lo =
      ((this.readByte() << 24) | (this.readByte() << 16) | (this.readByte() << 8) | this.readByte()) >>> 0;
    // The most significant bit must be 0, and lengths past 2^53 cannot be counted exactly;
    // both are far beyond any maxPayload, so they fail as "too big".
    if (hi > 0x1fffff) return this.fail(new MessageTooBigError(this.maxPayload));
    this.payloadLength = hi * 0x100000000 + lo;
    return this.afterLength();
  }

  private afterLength(): boolean {
    if (this.opcode < 8) {
      this.wireLength += this.payloadLength;
      if (this.wireLength > this.maxPayload) return this.fail(new MessageTooBigError(this.maxPayload));
    }
    this.remaining = this.payloadLength;
    this.maskOffset = 0;
    this.state = this.masked ? GET_MASK : GET_DATA;
    return true;
  }

  private getData(): boolean {
    const opcode = this.opcode;
    if (opcode >= 8) {
      if (this.buffered < this.remaining) return false;
      const payload = this.remaining === 0 ? EMPTY_BUFFER : this.take(this.remaining);
      if (this.masked && payload.length > 0) applyMask(payload, this.mask, 0);
      this.state = GET_INFO;
      return this.control(opcode, payload);
    }

    if (this.messageCompressed) {
      // Compressed frames are collected as they arrive (bounded by maxPayload from the header)
      // and inflated whole.
      if (this.remaining > 0) {
        if (this.buffered === 0) return false;
        const n = Math.min(this.buffered, this.remaining);
        const piece = this.take(n);
        if (this.masked) applyMask(piece, this.mask, this.maskOffset);
        this.maskOffset += n;
        this.remaining -= n;
        if (this.frameParts === NO_FRAGMENTS) this.frameParts = [];
        this.stage(this.frameParts, piece);
        if (this.remaining > 0) return false;
      }
      this.flushStaging();
      const parts = this.frameParts;
      this.frameParts = NO_FRAGMENTS;
      const payload =
        parts.length === 0 ? EMPTY_BUFFER : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      this.state = INFLATING;
      this.sink.onBusy?.(true);
      this.inflater!.decompress(
        payload,
        this.fin,
        this.maxPayload - this.messageLength,
        this.onInflatedBound!,
      );
      return false;
    }

    if (this.remaining > 0) {
      if (this.buffered === 0) return false;
      const n = Math.min(this.buffered, this.remaining);
      const piece = this.take(n);
      if (this.masked) applyMask(piece, this.mask, this.maskOffset);
      this.maskOffset += n;
      this.remaining -= n;
      if (!this.addPiece(piece)) return false;
      if (this.remaining > 0) return false;
    }
    this.state = GET_INFO;
    if (this.fin) return this.deliver();
    return true;
  }

  private addPiece(piece: Buffer): boolean {
    this.messageLength += piece.length;
    if (this.messageOpcode === Opcode.Text) {
      this.utf8State = utf8Feed(piece, this.utf8State);
      if (this.utf8State === UTF8_REJECT) return this.fail(new InvalidUtf8Error('text message'));
    }
    if (this.fragments === NO_FRAGMENTS) this.fragments = [];
    this.stage(this.fragments, piece);
    return true;
  }

  /**
   * Append a payload piece to `list`. Small pieces (a peer dripping bytes one TCP segment at a
   * time) are copied into a shared staging buffer, so memory stays proportional to the payload
   * instead of one Buffer object per tiny read.
   */
  private stage(list: Buffer[], piece: Buffer): void {
    if (this.stagingOwner !== list) this.flushStaging();
    if (piece.length >= SMALL_PIECE) {
      this.flushStaging();
      list.push(piece);
      return;
    }
    if (this.staging.length - this.stagingEnd < piece.length) {
      this.flushStaging();
      this.staging = Buffer.allocUnsafe(STAGING_SIZE);
      this.stagingStart = 0;
      this.stagingEnd = 0;
    }
    this.stagingOwner = list;
    piece.copy(this.staging, this.stagingEnd);
    this.stagingEnd += piece.length;
  }

  private flushStaging(): void {
    const owner = this.stagingOwner;
    if (owner === null) return;
    this.stagingOwner = null;
    if (this.stagingEnd > this.stagingStart) {
      owner.push(this.staging.subarray(this.stagingStart, this.stagingEnd));
      this.stagingStart = this.stagingEnd;
    }
  }

  private onInflated(error: WebSocketError | null, data: Buffer | null): void {
    if (this.state !== INFLATING) return;
    this.sink.onBusy?.(false);
    if (error !== null) {
      this.fail(error);
      return;
    }
    if (data !== null && data.length > 0 && !this.addPiece(data)) return;
    this.state = GET_INFO;
    if (this.fin && !this.deliver()) return;
    this.run();
  }

  private deliver(): boolean {
    if (this.stagingOwner === this.fragments) this.flushStaging();
    const opcode = this.messageOpcode;
    const fragments = this.fragments;
    const length = this.messageLength;
    this.messageOpcode = 0;
    this.messageCompressed = false;
    this.messageLength = 0;
    this.wireLength = 0;
    let data: Buffer;
    if (fragments.length === 1) {
      data = fragments[0]!;
      fragments.length = 0;
    } else if (fragments.length === 0) {
      data = EMPTY_BUFFER;
    } else {
      data = Buffer.concat(fragments, length);
      this.fragments = NO_FRAGMENTS;
    }
    if (opcode === Opcode.Text) {
      const complete = this.utf8State === UTF8_ACCEPT;
      this.utf8State = UTF8_ACCEPT;
      if (!complete) return this.fail(new InvalidUtf8Error('text message'));
      this.sink.onMessage(this.textAsBuffer ? data : data.toString(), false);
    } else {
      this.sink.onMessage(data, true);
    }
    return this.state !== DEAD;
  }

  private control(opcode: number, payload: Buffer): boolean {
    if (opcode === Opcode.Ping) {
      this.sink.onPing(payload);
    } else if (opcode === Opcode.Pong) {
      this.sink.onPong(payload);
    } else {
      let code = 1005;
      let reason = '';
      if (payload.length === 1) return this.fail(new ProtocolError('Close frame payload of 1 byte'));
      if (payload.length >= 2) {
        code = payload.readUInt16BE(0);
        if (!isValidWireCloseCode(code)) return this.fail(new InvalidCloseCodeError(code));
        const raw = payload.subarray(2);
        if (!isValidUtf8(raw)) return this.fail(new InvalidUtf8Error('close reason'));
        reason = raw.toString('utf8');
      }
      this.destroy();
      this.sink.onClose(code, reason);
      return false;
    }
    return this.state !== DEAD;
  }
}
