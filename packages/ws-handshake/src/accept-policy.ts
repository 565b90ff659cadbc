import http, { type IncomingMessage } from 'node:http';
import { HandshakeTimeoutError } from './errors.js';
import { acceptDeflateOffer, type ExtensionOffer, validateDeflateOptions } from './extension.js';
import {
  type AuthorizeResult,
  DEFAULT_DEFLATE_THRESHOLD,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_SERVER_HEARTBEAT,
  type PerMessageDeflateOptions,
  type ServerOptions,
  type WebSocketServerOptions,
} from './options.js';
import { PerMessageDeflate } from './permessage-deflate.js';
import type { TopicRegistry } from './topics.js';
import type { TransportName } from './transport.js';
import type { ConnectionSetup } from './websocket.js';

/*
 * The server's acceptance policy, shared by both transports (HTTP/1.1 Upgrade and RFC 8441
 * extended CONNECT): path, origin, authorize, subprotocol and permessage-deflate negotiation.
 * Only the wire format of the request checks and of the answer differs between them.
 */

export interface ResolvedServerOptions {
  options: ServerOptions;
  deflate: PerMessageDeflateOptions | null;
  path: string | undefined;
  origins: ((origin: string, req: IncomingMessage) => boolean) | null;
}

export function resolveOptions(options: WebSocketServerOptions): ResolvedServerOptions {
  let deflate: PerMessageDeflateOptions | null = null;
  if (options.perMessageDeflate !== undefined && options.perMessageDeflate !== false) {
    deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate;
    validateDeflateOptions(deflate);
  }
  let origins: ResolvedServerOptions['origins'] = null;
  const allowed = options.allowedOrigins;
  if (typeof allowed === 'function') {
    origins = allowed;
  } else if (allowed !== undefined) {
    const set = new Set(allowed.map((o) => o.toLowerCase()));
    origins = (origin) => set.has(origin.toLowerCase());
  }
  return { options, deflate, path: options.path, origins };
}

async function runAuthorize(
  authorize: NonNullable<ServerOptions['authorize']>,
  req: IncomingMessage,
  timeout: number,
): Promise<AuthorizeResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(() => authorize(req)),
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new HandshakeTimeoutError(timeout)), timeout);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function pathnameOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export interface Refusal {
  refused: true;
  status: number;
  message: string;
  headers?: Record<string, string> | undefined;
}

export interface Acceptance {
  refused: false;
  protocol: string | undefined;
  /** The Sec-WebSocket-Extensions answer, when permessage-deflate was agreed. */
  extensions: string | undefined;
  deflate: PerMessageDeflate | null;
}

export function refusal(status: number, message: string, headers?: Record<string, string>): Refusal {
  return { refused: true, status, message, headers };
}

/**
 * Decide on a syntactically valid request: path (404), origin (403), `authorize` (401/403/any,
 * 503 on timeout, 500 on throw), then the subprotocol and permessage-deflate. `gone()` tells
 * whether the peer left while `authorize` ran (then `null`: nothing to answer).
 */
export async function negotiate(
  req: IncomingMessage,
  offer: { protocols: string[]; extensions: ExtensionOffer[] },
  resolved: ResolvedServerOptions,
  gone: () => boolean,
): Promise<Refusal | Acceptance | null> {
  const { options } = resolved;
  if (resolved.path !== undefined && pathnameOf(req.url) !== resolved.path) {
    return refusal(404, 'Not Found');
  }
  if (resolved.origins !== null) {
    const origin = req.headers.origin;
    if (origin === undefined ? options.requireOrigin === true : !resolved.origins(origin, req)) {
      return refusal(403, 'Origin not allowed');
    }
  }
  if (options.authorize !== undefined) {
    let result: AuthorizeResult;
    try {
      result = await runAuthorize(
        options.authorize,
        req,
        options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      );
    } catch (error) {
      if (error instanceof HandshakeTimeoutError) return refusal(503, 'Authorization timed out');
      return refusal(500, 'Authorization failed');
    }
    if (result === false) return refusal(401, 'Unauthorized');
    if (typeof result === 'object' && result !== null) {
      const status =
        Number.isInteger(result.status) && result.status >= 400 && result.status <= 599 ? result.status : 403;
      return refusal(status, result.body ?? http.STATUS_CODES[status] ?? 'Rejected', result.headers);
    }
    if (gone()) return null;
  }

  let protocol: string | undefined;
  if (offer.protocols.length > 0) {
    if (options.handleProtocols !== undefined) {
      const chosen = options.handleProtocols(offer.protocols, req);
      if (typeof chosen === 'string' && offer.protocols.includes(chosen)) protocol = chosen;
    } else if (options.protocols !== undefined) {
      protocol = offer.protocols.find((p) => options.protocols!.includes(p));
    } else {
      protocol = offer.protocols[0];
    }
  }

  let deflate: PerMessageDeflate | null = null;
  let extensions: string | undefined;
  if (resolved.deflate !== null && offer.extensions.length > 0) {
    const accepted = acceptDeflateOffer(offer.extensions, resolved.deflate);
    if (accepted !== null) {
      extensions = accepted.response;
      deflate = new PerMessageDeflate(
        accepted.params,
        true,
        options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
        resolved.deflate.level,
        resolved.deflate.memLevel,
      );
    }
  }
  return { refused: false, protocol, extensions, deflate };
}

/** The connection settings for an accepted request. */
export function serverSetup(
  url: string,
  accepted: Acceptance,
  resolved: ResolvedServerOptions,
  transport: TransportName,
  topics: TopicRegistry | null,
): ConnectionSetup {
  return {
    isServer: true,
    url,
    protocol: accepted.protocol ?? '',
    extensions: accepted.extensions ?? '',
    deflate: accepted.deflate,
    deflateThreshold: resolved.deflate?.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
    heartbeatInterval: resolved.options.heartbeatInterval ?? DEFAULT_SERVER_HEARTBEAT,
    transport,
    topics,
  };
}
