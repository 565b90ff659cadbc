import { validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http2';
import { type ExtensionOffer, parseExtensions } from './extension.js';
import { parseProtocols } from './handshake.js';

/*
 * The RFC 8441 opening handshake (WebSockets over an HTTP/2 extended CONNECT stream), sans-I/O.
 * There is no Sec-WebSocket-Key/Accept (the stream itself proves the server understood the
 * request), no Upgrade/Connection (connection-specific headers do not exist in HTTP/2); success
 * is a 2xx. HTTP/2 has no 426, so an unsupported version is a 400 naming the one we speak.
 */

/** Pseudo-headers and fields of an HTTP/2 request, as node:http2 hands them over. */
export type H2RequestHeaders = IncomingHttpHeaders & Record<string, string | string[] | undefined>;

/** Result of {@link validateExtendedConnect}: what to accept the stream with, or how to refuse it. */
export type H2ConnectValidation =
  | { ok: true; path: string; authority: string; protocols: string[]; extensions: ExtensionOffer[] }
  | { ok: false; status: number; message: string; headers?: Record<string, string> };

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Whether a stream's headers are an RFC 8441 WebSocket request (CONNECT with `:protocol websocket`). */
export function isWebSocketConnect(headers: H2RequestHeaders): boolean {
  return headers[':method'] === 'CONNECT' && single(headers[':protocol'])?.toLowerCase() === 'websocket';
}

/** Check an extended CONNECT request against RFC 8441 §4/§5 and RFC 6455 §4.2.1 (minus the key). */
export function validateExtendedConnect(headers: H2RequestHeaders): H2ConnectValidation {
  if (headers[':method'] !== 'CONNECT') {
    return {
      ok: false,
      status: 405,
      message: 'WebSocket over HTTP/2 requires CONNECT',
      headers: { allow: 'CONNECT' },
    };
  }
  if (single(headers[':protocol'])?.toLowerCase() !== 'websocket') {
    return { ok: false, status: 400, message: 'Missing or invalid :protocol (websocket required)' };
  }
  const path = single(headers[':path']);
  if (path === undefined || path === '' || (path[0] !== '/' && path !== '*')) {
    return { ok: false, status: 400, message: 'Missing or invalid :path' };
  }
  if (single(headers[':scheme']) === undefined) return { ok: false, status: 400, message: 'Missing :scheme' };
  const authority = single(headers[':authority']) ?? single(headers.host);
  if (authority === undefined || authority === '') {
    return { ok: false, status: 400, message: 'Missing :authority' };
  }
  const version = single(headers['sec-websocket-version']);
  if (version === undefined || version.trim() !== '13') {
    return {
      ok: false,
      status: 400,
      message: 'Unsupported Sec-WebSocket-Version (13 required)',
      headers: { 'sec-websocket-version': '13' },
    };
  }
  const protocols = parseProtocols(single(headers['sec-websocket-protocol']));
  if (protocols === null) return { ok: false, status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
  const extHeader = single(headers['sec-websocket-extensions']);
  const extensions = extHeader === undefined ? [] : parseExtensions(extHeader);
  if (extensions === null)
    return { ok: false, status: 400, message: 'Invalid Sec-WebSocket-Extensions header' };
  return { ok: true, path, authority, protocols, extensions };
}

// Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2): never copied from user headers.
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/** User headers for an HTTP/2 response: names lower-cased, validated, connection-specific ones dropped. */
export function h2Headers(headers: Record<string, string> | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (headers === undefined) return out;
  for (const name of Object.keys(headers)) {
    const value = headers[name]!;
    validateHeaderName(name);
    validateHeaderValue(name, value);
    const lower = name.toLowerCase();
    if (lower.startsWith(':') || CONNECTION_SPECIFIC.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/** The `:status 200` answer to an accepted extended CONNECT. Throws on invalid user headers. */
export function buildH2AcceptHeaders(
  protocol: string | undefined,
  extensions: string | undefined,
  headers?: Record<string, string>,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...h2Headers(headers), ':status': 200 };
  if (protocol !== undefined) out['sec-websocket-protocol'] = protocol;
  if (extensions !== undefined) out['sec-websocket-extensions'] = extensions;
  return out;
}

/**
 * Client side: verify the answer to an extended CONNECT. Returns the selected subprotocol ('' for
 * none) and the parsed extensions, or an error message.
 */
export function verifyH2Response(
  headers: H2RequestHeaders,
  offeredProtocols: readonly string[],
): { protocol: string; extensions: ExtensionOffer[] } | string {
  const status = Number(headers[':status']);
  if (!(status >= 200 && status < 300)) return `Unexpected server response: ${status}`;
  const protocol = single(headers['sec-websocket-protocol']);
  let selected = '';
  if (protocol !== undefined) {
    const p = protocol.trim();
    if (!offeredProtocols.includes(p)) return 'Server selected a subprotocol that was not offered';
    selected = p;
  }
  const extHeader = single(headers['sec-websocket-extensions']);
  const extensions = extHeader === undefined ? [] : parseExtensions(extHeader);
  if (extensions === null) return 'Invalid Sec-WebSocket-Extensions header in response';
  return { protocol: selected, extensions };
}
