import { isUtf8 } from 'node:buffer';

/*
 * Incremental UTF-8 validation (RFC 3629), so a text message split across frames or TCP reads
 * can be rejected at the first bad byte. The state packs the number of continuation bytes still
 * expected (bits 0-1) with the allowed range for the next one (bits 2-9 low, 10-17 high): the
 * narrowed ranges after E0, ED, F0 and F4 are what exclude overlongs, surrogates and > U+10FFFF.
 */

/** Validator state meaning "at a character boundary". */
export const UTF8_ACCEPT = 0;
/** Returned when the input can never become valid UTF-8. */
export const UTF8_REJECT = -1;

function step(buf: Uint8Array, from: number, to: number, state: number): number {
  let need = state & 3;
  let lo = (state >>> 2) & 0xff;
  let hi = (state >>> 10) & 0xff;
  for (let i = from; i < to; i++) {
    const b = buf[i]!;
    if (need === 0) {
      if (b < 0x80) continue;
      if (b < 0xc2) return UTF8_REJECT;
      if (b < 0xe0) {
        need = 1;
        lo = 0x80;
        hi = 0xbf;
      } else if (b < 0xf0) {
        need = 2;
        lo = b === 0xe0 ? 0xa0 : 0x80;
        hi = b === 0xed ? 0x9f : 0xbf;
      } else if (b < 0xf5) {
        need = 3;
        lo = b === 0xf0 ? 0x90 : 0x80;
        hi = b === 0xf4 ? 0x8f : 0xbf;
      } else {
        return UTF8_REJECT;
      }
    } else {
      if (b < lo || b > hi) return UTF8_REJECT;
      need--;
      lo = 0x80;
      hi = 0xbf;
    }
  }
  return need === 0 ? UTF8_ACCEPT : need | (lo << 2) | (hi << 10);
}

/**
 * Feed the next piece of a UTF-8 stream. Returns the new state, `UTF8_REJECT` on an invalid
 * byte. The stream is complete and valid only if the final state is `UTF8_ACCEPT`.
 */
export function utf8Feed(buf: Uint8Array, state: number): number {
  const len = buf.length;
  let i = 0;
  // Finish a character left open by the previous piece (at most 3 bytes).
  while (state !== UTF8_ACCEPT && i < len) {
    state = step(buf, i, i + 1, state);
    if (state === UTF8_REJECT) return UTF8_REJECT;
    i++;
  }
  if (i === len) return state;
  if (len - i < 64) return step(buf, i, len, UTF8_ACCEPT);
  // Large piece: let the native validator check everything up to the last lead byte that may
  // start an unfinished character, then walk the (at most 3-byte) tail by hand.
  let tail = len;
  const stop = Math.max(i, len - 3);
  for (let k = len - 1; k >= stop; k--) {
    const b = buf[k]!;
    if (b >= 0xc0) {
      tail = k;
      break;
    }
    if (b < 0x80) break;
  }
  // The whole piece in the common case: no view object to allocate.
  if (!isUtf8(i === 0 && tail === len ? buf : buf.subarray(i, tail))) return UTF8_REJECT;
  return step(buf, tail, len, UTF8_ACCEPT);
}

/** Whole-buffer validation. */
export function isValidUtf8(buf: Uint8Array): boolean {
  return buf.length < 32 ? step(buf, 0, buf.length, UTF8_ACCEPT) === UTF8_ACCEPT : isUtf8(buf);
}
