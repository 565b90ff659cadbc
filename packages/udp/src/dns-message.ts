/**
 * A sans-I/O DNS message codec (RFC 1035 §4) with the mDNS bits of RFC 6762 §18: bytes in, a
 * message object out, and back. Decoding never throws: hostile input yields `{ ok: false, reason }`.
 *
 * Names are strings of labels joined by `.`; a `.` or `\` inside a label is written `\.` / `\\`
 * (DNS-SD instance names may contain dots, RFC 6763 §4.3).
 */
import { DnsEncodeError } from './errors.js';

/** Resource record type A: one IPv4 address (RFC 1035). */
export const RR_A = 1;
/** Resource record type PTR: a pointer to another name; DNS-SD lists instances with it. */
export const RR_PTR = 12;
/** Resource record type TXT: key/value strings (DNS-SD service metadata, RFC 6763 §6). */
export const RR_TXT = 16;
/** Resource record type AAAA: one IPv6 address (RFC 3596). */
export const RR_AAAA = 28;
/** Resource record type SRV: host and port of a service instance (RFC 2782). */
export const RR_SRV = 33;
/** Resource record type OPT: the EDNS(0) pseudo-record (RFC 6891). */
export const RR_OPT = 41;
/** Resource record type NSEC: which types a name has; mDNS uses it for negative answers. */
export const RR_NSEC = 47;
/** Query type ANY: every record type of a name. */
export const RR_ANY = 255;
/** Class IN (Internet), the only class mDNS and DNS-SD use. */
export const CLASS_IN = 1;

/** Largest message we decode or encode: the mDNS ceiling (RFC 6762 §17). */
export const MAX_DNS_MESSAGE = 9000;
const MAX_NAME = 255;
const MAX_LABEL = 63;

/** One entry of the question section: which name and record type is asked for. */
export interface DnsQuestion {
  name: string;
  type: number;
  /** The mDNS "QU" bit (top bit of qclass): the asker wants a unicast answer. */
  unicastResponse: boolean;
  class: number;
}

/** The data of an SRV record: where a service instance listens (RFC 2782). */
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** The data of an NSEC record: the next name and the record types that exist for this one. */
export interface NsecData {
  next: string;
  types: number[];
}

/** Fields every resource record has, whatever its type. */
export interface RecordBase {
  name: string;
  class: number;
  /** The mDNS cache-flush bit (top bit of rrclass): this set replaces what caches hold. */
  cacheFlush: boolean;
  /** Seconds; 0 is a goodbye. */
  ttl: number;
}

/** One resource record; `data` is decoded for the types this package knows, raw bytes otherwise. */
export type DnsRecord =
  | (RecordBase & { type: typeof RR_A; data: string })
  | (RecordBase & { type: typeof RR_AAAA; data: string })
  | (RecordBase & { type: typeof RR_PTR; data: string })
  | (RecordBase & { type: typeof RR_SRV; data: SrvData })
  | (RecordBase & { type: typeof RR_TXT; data: Uint8Array[] })
  | (RecordBase & { type: typeof RR_NSEC; data: NsecData })
  | (RecordBase & { type: number; data: Uint8Array });

/** A whole DNS message: header flags and the four sections. */
export interface DnsMessage {
  id: number;
  /** true for a response (QR bit). */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Why `decodeMessage` refused a message (also the keys of {@link DnsDecodeStats.invalid}). */
export type DnsDecodeReason =
  | 'too-short'
  | 'too-large'
  | 'truncated'
  | 'label-too-long'
  | 'name-too-long'
  | 'bad-label-type'
  | 'pointer-out-of-range'
  | 'pointer-loop'
  | 'bad-utf8'
  | 'bad-rdata'
  | 'trailing-bytes';

/** What `decodeMessage` returns: the message, or the reason and byte offset it was refused at. */
export type DnsDecodeResult =
  | { ok: true; message: DnsMessage }
  | { ok: false; reason: DnsDecodeReason; offset: number };

/** Counters a decoder caller keeps: one per refused message, by reason. */
export interface DnsDecodeStats {
  decoded: number;
  invalid: Partial<Record<DnsDecodeReason, number>>;
}

/** A fresh, zeroed {@link DnsDecodeStats} to pass to `decodeMessage`. */
export function newDecodeStats(): DnsDecodeStats {
  return { decoded: 0, invalid: {} };
}

class DecodeFailure {
  constructor(
    readonly reason: DnsDecodeReason,
    readonly offset: number,
  ) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Escapes `.` and `\` inside one label so the joined name splits back the same way. */
export function escapeLabel(label: string): string {
  return label.replace(/[\\.]/g, (c) => `\\${c}`);
}

/** Splits a name into labels, honouring `\.` and `\\`; a trailing dot is ignored. */
export function nameToLabels(name: string): string[] {
  const labels: string[] = [];
  let cur = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '\\' && i + 1 < name.length) {
      cur += name[++i];
    } else if (c === '.') {
      labels.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur !== '' || labels.length === 0) labels.push(cur);
  if (labels.length === 1 && labels[0] === '') return [];
  return labels;
}

/** Joins labels into a name, escaping `.` and `\` inside a label (inverse of {@link nameToLabels}). */
export function labelsToName(labels: readonly string[]): string {
  return labels.map(escapeLabel).join('.');
}

/** Case-insensitive (ASCII only, RFC 4343) comparison key of a name. */
export function nameKey(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/\.$/, '');
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
  pos = 12;
  constructor(readonly buf: Uint8Array) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DecodeFailure('truncated', this.pos);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /**
   * A pointer must point strictly before itself, so every chain ends: a loop (or a forward
   * pointer, which an RFC 1035 compressor never writes) is refused.
   */
  name(): string {
    const labels: string[] = [];
    let wire = 1;
    let p = this.pos;
    let jumped = false;
    for (;;) {
      if (p >= this.buf.length) throw new DecodeFailure('truncated', p);
      const len = this.buf[p]!;
      if (len === 0) {
        p += 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (p + 1 >= this.buf.length) throw new DecodeFailure('truncated', p);
        const target = ((len & 0x3f) << 8) | this.buf[p + 1]!;
        if (target >= this.buf.length) throw new DecodeFailure('pointer-out-of-range', p);
        if (target >= p) throw new DecodeFailure('pointer-loop', p);
        if (!jumped) this.pos = p + 2;
        jumped = true;
        p = target;
        continue;
      }
      if (kind !== 0) throw new DecodeFailure('bad-label-type', p);
      if (len > MAX_LABEL) throw new DecodeFailure('label-too-long', p);
      if (p + 1 + len > this.buf.length) throw new DecodeFailure('truncated', p);
      wire += len + 1;
      if (wire > MAX_NAME) throw new DecodeFailure('name-too-long', p);
      let label: string;
      try {
        label = utf8.decode(this.buf.subarray(p + 1, p + 1 + len));
      } catch {
        throw new DecodeFailure('bad-utf8', p);
      }
      labels.push(label);
      p += 1 + len;
    }
    if (!jumped) this.pos = p;
    return labelsToName(labels);
  }
}

function readQuestion(r: Reader): DnsQuestion {
  const name = r.name();
  const type = r.u16();
  const qclass = r.u16();
  return { name, type, unicastResponse: (qclass & 0x8000) !== 0, class: qclass & 0x7fff };
}

function readRecord(r: Reader): DnsRecord {
  const name = r.name();
  const type = r.u16();
  const rclass = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  r.need(rdlength);
  const start = r.pos;
  const end = start + rdlength;
  const base = { name, class: rclass & 0x7fff, cacheFlush: (rclass & 0x8000) !== 0, ttl };
  const bad = (): never => {
    throw new DecodeFailure('bad-rdata', start);
  };
  let record: DnsRecord;
  switch (type) {
    case RR_A: {
      if (rdlength !== 4) bad();
      const b = r.buf;
      record = { ...base, type, data: `${b[start]}.${b[start + 1]}.${b[start + 2]}.${b[start + 3]}` };
      break;
    }
    case RR_AAAA: {
      if (rdlength !== 16) bad();
      record = { ...base, type, data: formatIPv6(r.buf.subarray(start, end)) };
      break;
    }
    case RR_PTR: {
      const target = r.name();
      if (r.pos !== end) bad();
      record = { ...base, type, data: target };
      break;
    }
    case RR_SRV: {
      const priority = r.u16();
      const weight = r.u16();
      const port = r.u16();
      const target = r.name();
      if (r.pos !== end) bad();
      record = { ...base, type, data: { priority, weight, port, target } };
      break;
    }
    case RR_TXT: {
      const strings: Uint8Array[] = [];
      let p = start;
      while (p < end) {
        const len = r.buf[p]!;
        if (p + 1 + len > end) bad();
        strings.push(r.buf.slice(p + 1, p + 1 + len));
        p += 1 + len;
      }
      record = { ...base, type, data: strings };
      break;
    }
    case RR_NSEC: {
      const next = r.name();
      const types: number[] = [];
      let p = r.pos;
      if (p > end) bad();
      while (p < end) {
        if (p + 2 > end) bad();
        const block = r.buf[p]!;
        const len = r.buf[p + 1]!;
        // An empty window is not valid RFC 4034, but python-zeroconf writes one; it says nothing.
        if (len > 32 || p + 2 + len > end) bad();
        for (let i = 0; i < len; i++) {
          const bits = r.buf[p + 2 + i]!;
          for (let bit = 0; bit < 8; bit++) if (bits & (0x80 >> bit)) types.push(block * 256 + i * 8 + bit);
        }
        p += 2 + len;
      }
      record = { ...base, type, data: { next, types } };
      break;
    }
    default:
      record = { ...base, type, data: r.buf.slice(start, end) };
  }
  r.pos = end;
  return record;
}

/** Decodes one DNS message. Never throws; refusals are counted in `stats` when given. */
export function decodeMessage(bytes: Uint8Array, stats?: DnsDecodeStats): DnsDecodeResult {
  const result = decodeInner(bytes);
  if (stats) {
    if (result.ok) stats.decoded++;
    else stats.invalid[result.reason] = (stats.invalid[result.reason] ?? 0) + 1;
  }
  return result;
}

function decodeInner(bytes: Uint8Array): DnsDecodeResult {
  if (bytes.length < 12) return { ok: false, reason: 'too-short', offset: 0 };
  if (bytes.length > MAX_DNS_MESSAGE) return { ok: false, reason: 'too-large', offset: 0 };
  const r = new Reader(bytes);
  const u16 = (o: number) => (bytes[o]! << 8) | bytes[o + 1]!;
  const flags = u16(2);
  const counts = [u16(4), u16(6), u16(8), u16(10)] as const;
  try {
    const questions: DnsQuestion[] = [];
    for (let i = 0; i < counts[0]; i++) questions.push(readQuestion(r));
    const sections: DnsRecord[][] = [[], [], []];
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < counts[s + 1]!; i++) sections[s]!.push(readRecord(r));
    }
    if (r.pos !== bytes.length) return { ok: false, reason: 'trailing-bytes', offset: r.pos };
    return {
      ok: true,
      message: {
        id: u16(0),
        response: (flags & 0x8000) !== 0,
        opcode: (flags >> 11) & 0xf,
        authoritative: (flags & 0x0400) !== 0,
        truncated: (flags & 0x0200) !== 0,
        recursionDesired: (flags & 0x0100) !== 0,
        recursionAvailable: (flags & 0x0080) !== 0,
        rcode: flags & 0xf,
        questions,
        answers: sections[0]!,
        authorities: sections[1]!,
        additionals: sections[2]!,
      },
    };
  } catch (err) {
    if (err instanceof DecodeFailure) return { ok: false, reason: err.reason, offset: err.offset };
    // Anything else is a bug in this file; still never let hostile bytes crash the caller.
    return { ok: false, reason: 'bad-rdata', offset: r.pos };
  }
}

function formatIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  buf: Uint8Array;
  pos = 0;
  readonly #names = new Map<string, number>();
  constructor(
    readonly limit: number,
    readonly compress: boolean,
  ) {
    this.buf = new Uint8Array(Math.min(limit, 512));
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.limit) throw new DnsEncodeError(`message exceeds ${this.limit} bytes`);
    const next = new Uint8Array(Math.min(this.limit, Math.max(this.buf.length * 2, this.pos + n)));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf[this.pos++] = v >> 8;
    this.buf[this.pos++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16(Math.floor(v / 65536));
    this.u16(v % 65536);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  name(name: string): void {
    const labels = nameToLabels(name).map((l) => utf8Encoder.encode(l));
    let wire = 1;
    for (const l of labels) {
      if (l.length === 0 || l.length > MAX_LABEL) {
        throw new DnsEncodeError(`label of ${l.length} bytes in ${JSON.stringify(name)} (1–63 allowed)`);
      }
      wire += l.length + 1;
    }
    if (wire > MAX_NAME) throw new DnsEncodeError(`name ${JSON.stringify(name)} exceeds 255 bytes`);
    const keys = nameToLabels(nameKey(name));
    for (let i = 0; i < labels.length; i++) {
      const key = labelsToName(keys.slice(i));
      const at = this.compress ? this.#names.get(key) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.compress && this.pos < 0x4000) this.#names.set(key, this.pos);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
}

function writeRecord(w: Writer, r: DnsRecord): void {
  w.name(r.name);
  w.u16(r.type);
  w.u16((r.class & 0x7fff) | (r.cacheFlush ? 0x8000 : 0));
  if (!(Number.isInteger(r.ttl) && r.ttl >= 0 && r.ttl <= 0xffffffff)) throw new DnsEncodeError('bad ttl');
  w.u32(r.ttl);
  const lenAt = w.pos;
  w.u16(0);
  const start = w.pos;
  switch (r.type) {
    case RR_A: {
      const parts = (r.data as string).split('.').map(Number);
      if (parts.length !== 4 || parts.some((n) => !(Number.isInteger(n) && n >= 0 && n <= 255))) {
        throw new DnsEncodeError(`bad IPv4 address ${String(r.data)}`);
      }
      for (const n of parts) w.u8(n);
      break;
    }
    case RR_AAAA:
      w.bytes(parseIPv6(r.data as string));
      break;
    case RR_PTR:
      w.name(r.data as string);
      break;
    case RR_SRV: {
      const d = r.data as SrvData;
      w.u16(d.priority);
      w.u16(d.weight);
      w.u16(d.port);
      w.name(d.target);
      break;
    }
    case RR_TXT: {
      const strings = r.data as Uint8Array[];
      if (strings.length === 0) w.u8(0);
      for (const s of strings) {
        if (s.length > 255) throw new DnsEncodeError('TXT string over 255 bytes');
        w.u8(s.length);
        w.bytes(s);
      }
      break;
    }
    case RR_NSEC: {
      const d = r.data as NsecData;
      // RFC 6762 §18.14: the next-domain name is not compressed in mDNS NSEC records.
      const plain = new Writer(MAX_NAME + 1, false);
      plain.name(d.next);
      w.bytes(plain.buf.subarray(0, plain.pos));
      const blocks = new Map<number, number[]>();
      for (const t of d.types) {
        const list = blocks.get(t >> 8) ?? [];
        list.push(t & 0xff);
        blocks.set(t >> 8, list);
      }
      for (const [block, list] of [...blocks].sort((a, b) => a[0] - b[0])) {
        const bitmap = new Uint8Array((Math.max(...list) >> 3) + 1);
        for (const t of list) bitmap[t >> 3]! |= 0x80 >> (t & 7);
        w.u8(block);
        w.u8(bitmap.length);
        w.bytes(bitmap);
      }
      break;
    }
    default:
      w.bytes(r.data as Uint8Array);
  }
  const len = w.pos - start;
  w.buf[lenAt] = len >> 8;
  w.buf[lenAt + 1] = len & 0xff;
}

/** Options of {@link encodeMessage}. */
export interface EncodeOptions {
  /** Largest message produced; beyond it `ERR_UDP_DNS_ENCODE` is thrown. @default 9000 */
  maxSize?: number;
  /** Name compression (RFC 1035 §4.1.4). @default true */
  compress?: boolean;
}

/** Encodes a message; throws `DnsEncodeError` for a name, address or size it cannot represent. */
export function encodeMessage(m: Partial<DnsMessage>, options: EncodeOptions = {}): Uint8Array {
  const w = new Writer(options.maxSize ?? MAX_DNS_MESSAGE, options.compress ?? true);
  const questions = m.questions ?? [];
  const sections = [m.answers ?? [], m.authorities ?? [], m.additionals ?? []];
  w.u16(m.id ?? 0);
  w.u16(
    (m.response ? 0x8000 : 0) |
      (((m.opcode ?? 0) & 0xf) << 11) |
      (m.authoritative ? 0x0400 : 0) |
      (m.truncated ? 0x0200 : 0) |
      (m.recursionDesired ? 0x0100 : 0) |
      (m.recursionAvailable ? 0x0080 : 0) |
      ((m.rcode ?? 0) & 0xf),
  );
  w.u16(questions.length);
  for (const s of sections) w.u16(s.length);
  for (const q of questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16((q.class & 0x7fff) | (q.unicastResponse ? 0x8000 : 0));
  }
  for (const s of sections) for (const r of s) writeRecord(w, r);
  return w.buf.slice(0, w.pos);
}

/** Parses an IPv6 address (`::` and an IPv4 tail allowed) into 16 bytes; `DnsEncodeError` on bad text. */
export function parseIPv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const n = v4.slice(1).map(Number);
    const hi = ((n[0]! << 8) | n[1]!).toString(16);
    const lo = ((n[2]! << 8) | n[3]!).toString(16);
    s = `${s.slice(0, v4.index)}${hi}:${lo}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw new DnsEncodeError(`bad IPv6 address ${text}`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0)
    throw new DnsEncodeError(`bad IPv6 address ${text}`);
  const groups = [...head, ...new Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new DnsEncodeError(`bad IPv6 address ${text}`);
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** The uncompressed rdata of a record: what RFC 6762 §8.2 compares and caches key on. */
export function rdataOf(r: DnsRecord): Uint8Array {
  const w = new Writer(65535, false);
  writeRecord(w, { ...r, name: '' } as DnsRecord);
  // root name (1) + type (2) + class (2) + ttl (4) + rdlength (2)
  return w.buf.slice(11, w.pos);
}

/** Identity of a record for caches and known-answer lists: name, type, class and rdata. */
export function recordKey(r: DnsRecord): string {
  return `${nameKey(r.name)}|${r.type}|${r.class}|${Buffer.from(rdataOf(r)).toString('base64')}`;
}

/** RFC 6762 §8.2: class, then type, then rdata bytes; negative when `a` is lexicographically earlier. */
export function compareRecords(a: DnsRecord, b: DnsRecord): number {
  if (a.class !== b.class) return a.class - b.class;
  if (a.type !== b.type) return a.type - b.type;
  const x = rdataOf(a);
  const y = rdataOf(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
