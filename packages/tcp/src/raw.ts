import { Buffer } from 'node:buffer';
import { asBuffer } from './buffer-list.js';
import type { Codec, CodecFactory } from './codec.js';

/**
 * No framing: every chunk the socket delivers is one message, every message is written as is.
 * Useful for proxies and for protocols you parse yourself; the chunk boundaries carry no meaning.
 */
export class RawCodec implements Codec<Buffer, Uint8Array | string> {
  readonly bufferedBytes = 0;

  decode(chunk: Uint8Array, out: Buffer[]): void {
    if (chunk.byteLength > 0) out.push(asBuffer(chunk));
  }

  end(_out: Buffer[]): void {}

  encode(message: Uint8Array | string): Uint8Array {
    return typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  }

  reset(): void {}
}

/** Codec factory for unframed bytes (see `RawCodec`). */
export function raw(): CodecFactory<Buffer, Uint8Array | string> {
  return () => new RawCodec();
}
