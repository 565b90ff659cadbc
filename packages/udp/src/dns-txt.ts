/**
 * DNS-SD TXT record key/value strings (RFC 6763 §6): `key=value`, `key` alone for a boolean
 * attribute, keys printable US-ASCII without `=`, compared case-insensitively, first one wins.
 */
import { DnsEncodeError } from './errors.js';

/** A TXT value: text, raw bytes, or `true` for a key present without `=` (boolean attribute). */
export type TxtValue = string | Uint8Array | true;
/** TXT pairs as given to `advertise`: numbers become text; `false`, `null` and `undefined` are left out. */
export type TxtInput = Record<string, TxtValue | number | boolean | null | undefined>;

/** RFC 6763 §6.2: keep the whole record small enough to share a packet with the other records. */
export const MAX_TXT_SIZE = 1300;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why a key is refused, or undefined. */
export function txtKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'empty TXT key';
  if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(key))
    return `TXT key ${JSON.stringify(key)} must be printable ASCII without "="`;
  return undefined;
}

/**
 * Encodes pairs into TXT strings. `false`, `null` and `undefined` values are left out; numbers
 * become text. Throws `DnsEncodeError` for a bad key, a duplicate key (case-insensitive), a string
 * over 255 bytes or a record over {@link MAX_TXT_SIZE}.
 */
export function encodeTxt(pairs: TxtInput = {}, maxSize = MAX_TXT_SIZE): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const [key, value] of Object.entries(pairs)) {
    if (value === false || value === null || value === undefined) continue;
    const problem = txtKeyProblem(key);
    if (problem) throw new DnsEncodeError(problem);
    const lower = key.toLowerCase();
    if (seen.has(lower)) throw new DnsEncodeError(`duplicate TXT key ${JSON.stringify(key)}`);
    seen.add(lower);
    let bytes: Uint8Array;
    if (value === true) bytes = encoder.encode(key);
    else {
      const v =
        typeof value === 'number'
          ? encoder.encode(String(value))
          : typeof value === 'string'
            ? encoder.encode(value)
            : value;
      const k = encoder.encode(`${key}=`);
      bytes = new Uint8Array(k.length + v.length);
      bytes.set(k);
      bytes.set(v, k.length);
    }
    if (bytes.length > 255) throw new DnsEncodeError(`TXT entry ${JSON.stringify(key)} exceeds 255 bytes`);
    total += bytes.length + 1;
    out.push(bytes);
  }
  if (total > maxSize) throw new DnsEncodeError(`TXT record of ${total} bytes exceeds ${maxSize}`);
  return out;
}

/**
 * Decodes TXT strings into a null-prototype object (a `__proto__` key is plain data). Keys are
 * lower-cased; the first occurrence wins (§6.4); empty strings and strings starting with `=` are
 * skipped. Values that are not UTF-8 are kept as bytes.
 */
export function decodeTxt(strings: readonly Uint8Array[]): Record<string, TxtValue> {
  const out: Record<string, TxtValue> = Object.create(null);
  for (const s of strings) {
    if (s.length === 0) continue;
    const eq = s.indexOf(0x3d);
    if (eq === 0) continue;
    let key: string;
    try {
      key = decoder.decode(eq < 0 ? s : s.subarray(0, eq)).toLowerCase();
    } catch {
      continue;
    }
    if (txtKeyProblem(key) || key in out) continue;
    if (eq < 0) {
      out[key] = true;
      continue;
    }
    const raw = s.subarray(eq + 1);
    try {
      out[key] = decoder.decode(raw);
    } catch {
      out[key] = raw.slice();
    }
  }
  return out;
}
