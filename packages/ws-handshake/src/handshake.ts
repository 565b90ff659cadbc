import { createHash, randomBytes } from 'node:crypto';
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import { WS_GUID } from './constants.js';
import { type ExtensionOffer, isToken, parseExtensions } from './extension.js';

/*
 * The opening handshake (RFC 6455 §4), sans-I/O: header validation, the accept key, response
 * text. The server and client modules do the socket work.
 */

/** Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2). */
export function computeAcceptKey(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. */
export function createClientKey(): string {
  return randomBytes(16).toString('base64');
}

// 16 bytes in base64 are exactly 22 characters and "==". (Non-canonical last characters still
// decode to 16 bytes, so they are accepted like every common decoder does.)
const KEY_RE = /^[A-Za-z0-9+/]{22}==$/;

/** Whether a comma-separated header contains `token` (case-insensitive). */
export function headerHasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const joined = Array.isArray(value) ? value.join(',') : value;
  for (const part of joined.split(',')) {
    if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Parse Sec-WebSocket-Protocol: a list of distinct tokens. `null` when malformed. */
export function parseProtocols(value: string | undefined): string[] | null {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const p = part.trim();
    if (!isToken(p) || out.includes(p)) return null;
    out.push(p);
  }
  return out;
}

/** The parts of an HTTP upgrade request that validation reads (an `IncomingMessage` fits). */
export interface UpgradeRequestLike {
  method?: string | undefined;
  httpVersionMajor?: number;
  httpVersionMinor?: number;
  headers: IncomingHttpHeaders;
}

/** Result of {@link validateUpgradeRequest}: what to answer the 101 with, or how to refuse it. */
export type UpgradeValidation =
  | { ok: true; key: string; protocols: string[]; extensions: ExtensionOffer[] }
  | { ok: false; status: number; message: string; headers?: Record<string, string> };

/** Check an upgrade request against RFC 6455 §4.2.1. */
export function validateUpgradeRequest(req: UpgradeRequestLike): UpgradeValidation {
  if (req.method !== 'GET') {
    return { ok: false, status: 405, message: 'WebSocket upgrade requires GET', headers: { Allow: 'GET' } };
  }
  const major = req.httpVersionMajor ?? 1;
  const minor = req.httpVersionMinor ?? 1;
  if (major < 1 || (major === 1 && minor < 1)) {
    return { ok: false, status: 400, message: 'WebSocket upgrade requires HTTP/1.1' };
  }
  const h = req.headers;
  if (h.host === undefined || h.host === '')
    return { ok: false, status: 400, message: 'Missing Host header' };
  if (!headerHasToken(h.upgrade, 'websocket')) {
    return { ok: false, status: 400, message: 'Missing or invalid Upgrade header' };
  }
  if (!headerHasToken(h.connection, 'upgrade')) {
    return { ok: false, status: 400, message: 'Missing or invalid Connection header' };
  }
  const version = h['sec-websocket-version'];
  if (version === undefined || version.trim() !== '13') {
    return {
      ok: false,
      status: 426,
      message: 'Unsupported Sec-WebSocket-Version (13 required)',
      headers: { 'Sec-WebSocket-Version': '13' },
    };
  }
  const key = h['sec-websocket-key'];
  if (key === undefined || !KEY_RE.test(key.trim())) {
    return { ok: false, status: 400, message: 'Missing or invalid Sec-WebSocket-Key' };
  }
  const protocols = parseProtocols(h['sec-websocket-protocol']);
  if (protocols === null) return { ok: false, status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
  const extHeader = h['sec-websocket-extensions'];
  const extensions = extHeader === undefined ? [] : parseExtensions(extHeader);
  if (extensions === null)
    return { ok: false, status: 400, message: 'Invalid Sec-WebSocket-Extensions header' };
  return { ok: true, key: key.trim(), protocols, extensions };
}

function headerLines(headers: Record<string, string> | undefined): string {
  if (headers === undefined) return '';
  let out = '';
  for (const name of Object.keys(headers)) {
    const value = headers[name]!;
    // Throws on CR/LF or illegal characters: no response splitting through user headers.
    validateHeaderName(name);
    validateHeaderValue(name, value);
    out += `${name}: ${value}\r\n`;
  }
  return out;
}

/** The 101 response. */
export function buildAcceptResponse(
  key: string,
  protocol: string | undefined,
  extensions: string | undefined,
  headers?: Record<string, string>,
): string {
  let s =
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n`;
  if (protocol !== undefined) s += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== undefined) s += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  return s + headerLines(headers) + '\r\n';
}

/** A complete, connection-closing HTTP error response. */
export function buildRejectResponse(status: number, body: string, headers?: Record<string, string>): string {
  const reason = STATUS_CODES[status] ?? 'Error';
  const len = Buffer.byteLength(body);
  return (
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${len}\r\n${headerLines(headers)}\r\n${body}`
  );
}

/** The parts of a 101 response that {@link verifyUpgradeResponse} reads (an `IncomingMessage` fits). */
export interface UpgradeResponseLike {
  statusCode?: number | undefined;
  headers: IncomingHttpHeaders;
}

/**
 * Client side: verify a 101 response (RFC 6455 §4.1). Returns the selected subprotocol ('' for
 * none) and the parsed extensions, or an error message.
 */
export function verifyUpgradeResponse(
  res: UpgradeResponseLike,
  key: string,
  offeredProtocols: readonly string[],
): { protocol: string; extensions: ExtensionOffer[] } | string {
  if (res.statusCode !== 101) return `Unexpected response status ${res.statusCode}`;
  const h = res.headers;
  if (!headerHasToken(h.upgrade, 'websocket')) return 'Invalid Upgrade header in response';
  if (!headerHasToken(h.connection, 'upgrade')) return 'Invalid Connection header in response';
  if (h['sec-websocket-accept'] !== computeAcceptKey(key)) return 'Invalid Sec-WebSocket-Accept header';
  const protocol = h['sec-websocket-protocol'];
  let selected = '';
  if (protocol !== undefined) {
    const p = protocol.trim();
    if (!offeredProtocols.includes(p)) return 'Server selected a subprotocol that was not offered';
    selected = p;
  }
  const extHeader = h['sec-websocket-extensions'];
  const extensions = extHeader === undefined ? [] : parseExtensions(extHeader);
  if (extensions === null) return 'Invalid Sec-WebSocket-Extensions header in response';
  return { protocol: selected, extensions };
}
