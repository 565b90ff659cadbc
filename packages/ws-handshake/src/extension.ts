import type { PerMessageDeflateOptions } from './options.js';

/*
 * Sec-WebSocket-Extensions (RFC 6455 §9.1) and the permessage-deflate negotiation (RFC 7692 §7).
 */

/** One element of a Sec-WebSocket-Extensions list. Params keep order and duplicates. */
export interface ExtensionOffer {
  name: string;
  params: Array<[name: string, value: string | true]>;
}

/** The parameters both sides agreed on for permessage-deflate. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

// RFC 7230 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] !== 1) return false;
  }
  return true;
}

/**
 * Parse a Sec-WebSocket-Extensions value. Returns `null` when it does not follow the grammar
 * (a quoted value must unescape to a token, as §9.1 requires). Empty list elements are skipped,
 * as the RFC 7230 `#rule` allows.
 */
export function parseExtensions(header: string): ExtensionOffer[] | null {
  const out: ExtensionOffer[] = [];
  const n = header.length;
  let i = 0;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string | null => {
    const start = i;
    while (i < n) {
      const c = header.charCodeAt(i);
      if (c >= 128 || TCHAR[c] !== 1) break;
      i++;
    }
    return i === start ? null : header.slice(start, i);
  };
  for (;;) {
    skipWs();
    if (i >= n) break;
    if (header[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (name === null) return null;
    const params: Array<[string, string | true]> = [];
    skipWs();
    while (header[i] === ';') {
      i++;
      skipWs();
      const pname = token();
      if (pname === null) return null;
      skipWs();
      let value: string | true = true;
      if (header[i] === '=') {
        i++;
        skipWs();
        if (header[i] === '"') {
          i++;
          let v = '';
          while (i < n && header[i] !== '"') {
            if (header[i] === '\\') i++;
            if (i >= n) return null;
            v += header[i];
            i++;
          }
          if (i >= n) return null;
          i++;
          if (!isToken(v)) return null;
          value = v;
        } else {
          const v = token();
          if (v === null) return null;
          value = v;
        }
        skipWs();
      }
      params.push([pname.toLowerCase(), value]);
    }
    out.push({ name: name.toLowerCase(), params });
    skipWs();
    if (i < n && header[i] !== ',') return null;
  }
  return out;
}

/** Formats one extension offer or response as a `Sec-WebSocket-Extensions` element (`name; k=v`). */
export function formatExtension(offer: ExtensionOffer): string {
  let s = offer.name;
  for (const [k, v] of offer.params) s += v === true ? `; ${k}` : `; ${k}=${v}`;
  return s;
}

const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

interface ParsedDeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true` when present without a value (allowed only in offers). */
  clientMaxWindowBits: number | true | undefined;
}

/** Validate permessage-deflate params: known names, each at most once, legal values. */
function readDeflateParams(
  params: ExtensionOffer['params'],
  isResponse: boolean,
): ParsedDeflateParams | null {
  const seen = new Set<string>();
  const out: ParsedDeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  for (const [name, value] of params) {
    if (seen.has(name)) return null;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
        if (value !== true) return null;
        out.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        if (value !== true) return null;
        out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === true || !WINDOW_BITS.test(value)) return null;
        out.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        if (value === true) {
          if (isResponse) return null;
          out.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS.test(value)) return null;
          out.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return null;
    }
  }
  return out;
}

function checkBits(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 8 || value > 15)) {
    throw new RangeError(`${what} must be an integer between 8 and 15`);
  }
}

/** Throws a RangeError for option values outside RFC 7692's ranges. */
export function validateDeflateOptions(opts: PerMessageDeflateOptions): void {
  checkBits(opts.serverMaxWindowBits, 'serverMaxWindowBits');
  checkBits(opts.clientMaxWindowBits, 'clientMaxWindowBits');
}

/**
 * Server side: accept the first acceptable permessage-deflate offer. Offers with unknown,
 * duplicated or invalid params are declined (RFC 7692 §5), not failed. Returns the agreed
 * params and the response header element, or `null` when no offer is acceptable.
 */
export function acceptDeflateOffer(
  offers: readonly ExtensionOffer[],
  opts: PerMessageDeflateOptions,
): { params: DeflateParams; response: string } | null {
  for (const offer of offers) {
    if (offer.name !== 'permessage-deflate') continue;
    const p = readDeflateParams(offer.params, false);
    if (p === null) continue;
    const response: ExtensionOffer = { name: 'permessage-deflate', params: [] };
    const serverNoContextTakeover = p.serverNoContextTakeover || opts.serverNoContextTakeover === true;
    const clientNoContextTakeover = p.clientNoContextTakeover || opts.clientNoContextTakeover === true;
    if (serverNoContextTakeover) response.params.push(['server_no_context_takeover', true]);
    if (clientNoContextTakeover) response.params.push(['client_no_context_takeover', true]);
    let serverBits = 15;
    if (p.serverMaxWindowBits !== undefined || opts.serverMaxWindowBits !== undefined) {
      serverBits = Math.min(p.serverMaxWindowBits ?? 15, opts.serverMaxWindowBits ?? 15);
      response.params.push(['server_max_window_bits', String(serverBits)]);
    }
    let clientBits = 15;
    if (p.clientMaxWindowBits !== undefined) {
      const offered = p.clientMaxWindowBits === true ? 15 : p.clientMaxWindowBits;
      clientBits = Math.min(offered, opts.clientMaxWindowBits ?? 15);
      if (opts.clientMaxWindowBits !== undefined || p.clientMaxWindowBits !== true) {
        response.params.push(['client_max_window_bits', String(clientBits)]);
      }
    }
    return {
      params: {
        serverNoContextTakeover,
        clientNoContextTakeover,
        serverMaxWindowBits: serverBits,
        clientMaxWindowBits: clientBits,
      },
      response: formatExtension(response),
    };
  }
  return null;
}

/** Client side: the permessage-deflate offer to send. */
export function deflateOffer(opts: PerMessageDeflateOptions): string {
  const offer: ExtensionOffer = { name: 'permessage-deflate', params: [] };
  if (opts.serverNoContextTakeover) offer.params.push(['server_no_context_takeover', true]);
  if (opts.clientNoContextTakeover) offer.params.push(['client_no_context_takeover', true]);
  if (opts.serverMaxWindowBits !== undefined) {
    offer.params.push(['server_max_window_bits', String(opts.serverMaxWindowBits)]);
  }
  offer.params.push([
    'client_max_window_bits',
    opts.clientMaxWindowBits === undefined ? true : String(opts.clientMaxWindowBits),
  ]);
  return formatExtension(offer);
}

/**
 * Client side: check the server's permessage-deflate response against what was offered.
 * Returns the agreed params, or an error message.
 */
export function verifyDeflateResponse(
  response: ExtensionOffer,
  opts: PerMessageDeflateOptions,
): DeflateParams | string {
  const p = readDeflateParams(response.params, true);
  if (p === null) return 'Invalid permessage-deflate parameters in response';
  if (opts.serverNoContextTakeover && !p.serverNoContextTakeover) {
    return 'Server did not accept server_no_context_takeover';
  }
  if (
    p.serverMaxWindowBits !== undefined &&
    opts.serverMaxWindowBits !== undefined &&
    p.serverMaxWindowBits > opts.serverMaxWindowBits
  ) {
    return 'Server chose a larger server_max_window_bits than offered';
  }
  if (opts.serverMaxWindowBits !== undefined && p.serverMaxWindowBits === undefined) {
    return 'Server did not accept server_max_window_bits';
  }
  const clientBits = p.clientMaxWindowBits === true ? 15 : p.clientMaxWindowBits;
  if (
    clientBits !== undefined &&
    opts.clientMaxWindowBits !== undefined &&
    clientBits > opts.clientMaxWindowBits
  ) {
    return 'Server chose a larger client_max_window_bits than offered';
  }
  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    clientNoContextTakeover: p.clientNoContextTakeover || opts.clientNoContextTakeover === true,
    serverMaxWindowBits: p.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: clientBits ?? opts.clientMaxWindowBits ?? 15,
  };
}
