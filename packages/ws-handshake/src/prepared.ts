import { Opcode } from './constants.js';
import { type SendData, toBuffer } from './outbound.js';
import { type DeflateSettings, deflateMessageSync } from './permessage-deflate.js';
import { encodeFrame } from './sender.js';

/**
 * A server message framed once and written to many connections (`broadcast`, `publish`,
 * `sendPrepared`). Connections that negotiated permessage-deflate without context takeover
 * share one compressed frame per compressor setting, compressed on first use; the others
 * (context takeover, client side, mid-fragment) encode the message themselves.
 */
export class PreparedMessage {
  readonly binary: boolean;
  readonly payload: Buffer;
  /** The unmasked, uncompressed frame bytes. */
  readonly frame: Buffer | [Buffer, Buffer];
  private compressed: Map<string, Buffer | [Buffer, Buffer]> | null = null;

  constructor(data: SendData, binary?: boolean) {
    this.binary = binary ?? typeof data !== 'string';
    this.payload = toBuffer(data);
    this.frame = encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, this.payload, true, false, false);
  }

  /** The message as `send()` takes it. */
  get data(): SendData {
    return this.binary ? this.payload : this.payload.toString();
  }

  /** @internal The RSV1 frame for connections compressing with these settings (built once). */
  compressedFrame(settings: DeflateSettings): Buffer | [Buffer, Buffer] {
    if (this.compressed === null) this.compressed = new Map();
    let frame = this.compressed.get(settings.key);
    if (frame === undefined) {
      const body = deflateMessageSync(this.payload, settings);
      frame = encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, body, true, true, false);
      this.compressed.set(settings.key, frame);
    }
    return frame;
  }
}
