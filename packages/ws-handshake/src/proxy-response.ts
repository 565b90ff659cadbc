import { ProxyError } from './errors.js';

/** Largest CONNECT response head accepted from a proxy. */
export const MAX_PROXY_RESPONSE_HEAD = 16 * 1024;

/** A proxy's parsed answer to CONNECT: status, headers (lower-case names), bytes after the head. */
export interface ConnectResponse {
  status: number;
  reason: string;
  headers: Map<string, string>;
  /** Bytes after the head (the origin's first bytes, if the proxy sent them with the head). */
  rest: Buffer;
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Sans-I/O parser for a proxy's answer to CONNECT: push chunks as they arrive; returns the
 * response once the head is complete, `null` while more bytes are needed. Throws `ProxyError`
 * on a head that is not HTTP/1.x or exceeds `limit` bytes.
 */
export class ConnectResponseParser {
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly limit: number;

  constructor(limit = MAX_PROXY_RESPONSE_HEAD) {
    this.limit = limit;
  }

  /** Feeds bytes; returns the response once the head is complete, `null` while more are needed. */
  push(chunk: Buffer): ConnectResponse | null {
    // Search only where a terminator can newly appear: the last 3 old bytes plus the chunk.
    const searchFrom = Math.max(0, this.size - 3);
    this.chunks.push(chunk);
    this.size += chunk.length;
    const all = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.size);
    this.chunks = [all];
    const end = all.indexOf(CRLFCRLF, searchFrom);
    if (end === -1) {
      if (this.size > this.limit) throw new ProxyError(`Proxy response head exceeds ${this.limit} bytes`);
      return null;
    }
    if (end + 4 > this.limit) throw new ProxyError(`Proxy response head exceeds ${this.limit} bytes`);
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const match = STATUS_LINE.exec(lines[0] ?? '');
    if (match === null) throw new ProxyError('Proxy answered CONNECT with something other than HTTP/1.x');
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ProxyError('Malformed header in the proxy response');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    return { status: Number(match[1]), reason: match[2] ?? '', headers, rest: all.subarray(end + 4) };
  }
}
