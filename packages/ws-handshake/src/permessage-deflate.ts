import zlib from 'node:zlib';
import { DecompressionError, MessageTooBigError, type WebSocketError } from './errors.js';
import type { DeflateParams } from './extension.js';
import type { FrameInflater } from './receiver.js';

/** RFC 7692 §7.2.1: each message ends with the empty stored block produced by a sync flush. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

type Callback = (error: WebSocketError | null, data: Buffer | null) => void;

/*
 * zlib work runs on libuv's small thread pool and each job holds native buffers; thousands of
 * connections compressing at once fragment memory badly. A process-wide cap on concurrent jobs
 * keeps that bounded; waiting jobs queue in order.
 */
const ZLIB_CONCURRENCY = 10;
let zlibActive = 0;
const zlibWaiting: Array<() => void> = [];

function acquireSlot(start: () => void): void {
  if (zlibActive < ZLIB_CONCURRENCY) {
    zlibActive++;
    start();
  } else {
    zlibWaiting.push(start);
  }
}

function releaseSlot(): void {
  const next = zlibWaiting.shift();
  if (next !== undefined) next();
  else zlibActive--;
}

/** Compressor settings of a connection that resets its context after every message. */
export interface DeflateSettings {
  /** `windowBits:level:memLevel`, the identity of the output. */
  readonly key: string;
  readonly windowBits: number;
  readonly level: number;
  readonly memLevel: number;
}

const settingsCache = new Map<string, DeflateSettings>();
function sharedSettingsFor(windowBits: number, level: number, memLevel: number): DeflateSettings {
  const key = `${windowBits}:${level}:${memLevel}`;
  let settings = settingsCache.get(key);
  if (settings === undefined) {
    settings = { key, windowBits, level, memLevel };
    settingsCache.set(key, settings);
  }
  return settings;
}

/**
 * Compress one whole message the way a no-context-takeover connection with these settings
 * would (same bytes), synchronously, so one result can be written to many connections.
 */
export function deflateMessageSync(data: Buffer, settings: DeflateSettings): Buffer {
  let out = zlib.deflateRawSync(data, {
    windowBits: settings.windowBits,
    level: settings.level,
    memLevel: settings.memLevel,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const n = out.length;
  if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
    out = out.subarray(0, n - 4);
  }
  return out.length === 0 ? Buffer.from([0x00]) : out;
}

function concat(chunks: Buffer[], length: number): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks, length);
}

/**
 * Bytes zlib has produced while inflating, over every connection in this process. Internal (not
 * exported from the package): the tests read it to prove that the zip-bomb guard stops zlib within
 * one output chunk of the limit, which an RSS delta cannot show.
 */
export const inflatedBytes = { total: 0 };

/**
 * permessage-deflate codec for one connection, both directions. zlib runs on the thread pool,
 * so both directions are asynchronous; callers keep at most one operation per direction in
 * flight (the receiver pauses while inflating, the connection queues sends while deflating),
 * which keeps message order and lets callbacks be stored in fields instead of closures.
 */
export class PerMessageDeflate implements FrameInflater {
  readonly params: DeflateParams;
  private readonly isServer: boolean;
  private readonly maxPayload: number;
  private readonly level: number;
  private readonly memLevel: number;

  private inflate: zlib.InflateRaw | null = null;
  private inCallback: Callback | null = null;
  private inChunks: Buffer[] = [];
  private inLength = 0;
  private inLimit = 0;
  private inFin = false;

  private deflate: zlib.DeflateRaw | null = null;
  private closed = false;
  private inHeld = false;
  private outHeld = false;
  private outCallback: Callback | null = null;
  private outChunks: Buffer[] = [];
  private outLength = 0;
  private outFin = false;

  /**
   * Set when this side resets its compressor after every message: its output for a message
   * then depends only on these settings, so a message published to many connections is
   * compressed once for all that share them.
   */
  readonly sharedSettings: DeflateSettings | null;

  constructor(params: DeflateParams, isServer: boolean, maxPayload: number, level = 6, memLevel = 8) {
    this.params = params;
    this.isServer = isServer;
    this.maxPayload = maxPayload;
    this.level = level;
    this.memLevel = memLevel;
    const own = isServer ? params.serverNoContextTakeover : params.clientNoContextTakeover;
    const bits = isServer ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.sharedSettings = own ? sharedSettingsFor(Math.max(bits, 9), level, memLevel) : null;
  }

  /** Whether the peer resets its compressor after every message. */
  private get peerNoContextTakeover(): boolean {
    return this.isServer ? this.params.clientNoContextTakeover : this.params.serverNoContextTakeover;
  }

  private get ownNoContextTakeover(): boolean {
    return this.isServer ? this.params.serverNoContextTakeover : this.params.clientNoContextTakeover;
  }

  decompress(data: Buffer, fin: boolean, limit: number, callback: Callback): void {
    acquireSlot(() => this.startDecompress(data, fin, limit, callback));
  }

  private startDecompress(data: Buffer, fin: boolean, limit: number, callback: Callback): void {
    if (this.closed) {
      releaseSlot();
      return;
    }
    this.inHeld = true;
    if (this.inflate === null) {
      // A 15-bit window can inflate data from any smaller window, and zlib cannot deflate
      // with 8 bits anyway (it silently uses 9), so the inflater always takes the maximum.
      const inflate = zlib.createInflateRaw({ windowBits: 15 });
      inflate.on('data', this.onInflateData);
      inflate.on('error', this.onInflateError);
      this.inflate = inflate;
    }
    this.inCallback = callback;
    this.inChunks = [];
    this.inLength = 0;
    this.inLimit = limit;
    this.inFin = fin;
    if (data.length > 0) this.inflate.write(data);
    if (fin) this.inflate.write(TRAILER);
    this.inflate.flush(this.onInflateFlush);
  }

  private readonly onInflateData = (chunk: Buffer): void => {
    inflatedBytes.total += chunk.length;
    if (this.inCallback === null) return;
    this.inLength += chunk.length;
    if (this.inLength > this.inLimit) {
      // Zip bomb guard: stop inflating the moment the output passes the limit.
      const cb = this.takeIn()!;
      this.inChunks = [];
      this.dropInflate();
      cb(new MessageTooBigError(this.maxPayload), null);
      return;
    }
    this.inChunks.push(chunk);
  };

  private readonly onInflateError = (err: Error): void => {
    const cb = this.takeIn();
    this.inChunks = [];
    this.dropInflate();
    if (cb !== null) cb(new DecompressionError(err), null);
  };

  private readonly onInflateFlush = (): void => {
    const cb = this.takeIn();
    if (cb === null) return;
    const out = this.inLength === 0 ? null : concat(this.inChunks, this.inLength);
    this.inChunks = [];
    if (this.inFin && this.peerNoContextTakeover) this.inflate?.reset();
    cb(null, out);
  };

  private dropInflate(): void {
    const inflate = this.inflate;
    if (inflate === null) return;
    this.inflate = null;
    inflate.removeListener('data', this.onInflateData);
    inflate.close();
  }

  compress(data: Buffer, fin: boolean, callback: Callback): void {
    acquireSlot(() => this.startCompress(data, fin, callback));
  }

  private startCompress(data: Buffer, fin: boolean, callback: Callback): void {
    if (this.closed) {
      releaseSlot();
      return;
    }
    this.outHeld = true;
    if (this.deflate === null) {
      // zlib cannot deflate with an 8-bit window (it silently uses 9).
      const bits = this.isServer ? this.params.serverMaxWindowBits : this.params.clientMaxWindowBits;
      const deflate = zlib.createDeflateRaw({
        windowBits: Math.max(bits, 9),
        level: this.level,
        memLevel: this.memLevel,
      });
      deflate.on('data', this.onDeflateData);
      deflate.on('error', this.onDeflateError);
      this.deflate = deflate;
    }
    this.outCallback = callback;
    this.outChunks = [];
    this.outLength = 0;
    this.outFin = fin;
    if (data.length > 0) this.deflate.write(data);
    this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, this.onDeflateFlush);
  }

  private readonly onDeflateData = (chunk: Buffer): void => {
    this.outChunks.push(chunk);
    this.outLength += chunk.length;
  };

  private readonly onDeflateError = (err: Error): void => {
    const cb = this.takeOut();
    const deflate = this.deflate;
    this.deflate = null;
    deflate?.close();
    if (cb !== null) cb(new DecompressionError(err), null);
  };

  private readonly onDeflateFlush = (): void => {
    const cb = this.takeOut();
    if (cb === null) return;
    let out = concat(this.outChunks, this.outLength);
    this.outChunks = [];
    if (this.outFin) {
      const n = out.length;
      if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
        out = out.subarray(0, n - 4);
      }
      if (this.ownNoContextTakeover) this.deflate?.reset();
      // A final fragment must not end up empty: the receiver appends 00 00 ff ff, which needs
      // the 0x00 block header before it (RFC 7692 §7.2.3.6). Non-final fragments may be empty.
      if (out.length === 0) out = Buffer.from([0x00]);
    }
    cb(null, out);
  };

  /** Take the pending inflate callback, giving back the concurrency slot. */
  private takeIn(): Callback | null {
    const cb = this.inCallback;
    this.inCallback = null;
    if (this.inHeld) {
      this.inHeld = false;
      releaseSlot();
    }
    return cb;
  }

  private takeOut(): Callback | null {
    const cb = this.outCallback;
    this.outCallback = null;
    if (this.outHeld) {
      this.outHeld = false;
      releaseSlot();
    }
    return cb;
  }

  /** Release zlib resources; pending callbacks are dropped. */
  close(): void {
    this.closed = true;
    this.takeIn();
    this.takeOut();
    this.dropInflate();
    const deflate = this.deflate;
    this.deflate = null;
    deflate?.close();
  }
}
