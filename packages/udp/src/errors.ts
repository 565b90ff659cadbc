import { brandBaseClass } from './error-brand.js';

/**
 * Every error this package throws or rejects with. Each class carries a stable `code`
 * (like Node's `ERR_*` codes) so callers can branch on `err.code` without string matching
 * on messages, which are free to improve between releases.
 */

/** Base class of every error raised by @net/udp. */
export class UdpError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
brandBaseClass(UdpError);

/** An argument or option has the wrong type or is out of range. */
export class InvalidArgumentError extends UdpError {
  constructor(message: string) {
    super('ERR_UDP_INVALID_ARGUMENT', message);
  }
}

/** The payload exceeds what one UDP datagram can carry (or the socket's configured `maxPayload`). */
export class DatagramTooLargeError extends UdpError {
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number, family: 'IPv4' | 'IPv6') {
    super(
      'ERR_UDP_DATAGRAM_TOO_LARGE',
      `datagram of ${size} bytes exceeds the ${family} limit of ${limit} bytes; nothing was sent`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/**
 * The payload is larger than the safe payload size (1,472 bytes on IPv4 by default), so the IP
 * layer will fragment it and a single lost fragment loses the whole datagram. Thrown when
 * `unsafePayload: 'reject'`, emitted as a `warning` event when `unsafePayload: 'warn'`.
 */
export class UnsafePayloadError extends UdpError {
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number) {
    super(
      'ERR_UDP_UNSAFE_PAYLOAD',
      `datagram of ${size} bytes exceeds the safe payload size of ${limit} bytes and will be IP-fragmented`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/** The socket was closed (or is closing) and cannot perform the operation. */
export class SocketClosedError extends UdpError {
  constructor(operation: string) {
    super('ERR_UDP_SOCKET_CLOSED', `cannot ${operation}: the socket is closed`);
  }
}

/** The operation needs a bound socket (for example `address()` or multicast settings). */
export class SocketNotBoundError extends UdpError {
  constructor(operation: string) {
    super('ERR_UDP_NOT_BOUND', `cannot ${operation}: the socket is not bound yet (await bind() first)`);
  }
}

/** `bind()` failed, for example because the port is in use (`cause.code === 'EADDRINUSE'`). */
export class BindError extends UdpError {
  constructor(port: number, address: string | undefined, cause: unknown) {
    super('ERR_UDP_BIND', `cannot bind to ${address ?? '*'}:${port}: ${describe(cause)}`, { cause });
  }
}

/** `connect()` failed (lookup error, already connected, ...). */
export class ConnectError extends UdpError {
  constructor(port: number, host: string | undefined, cause: unknown) {
    super('ERR_UDP_CONNECT', `cannot connect to ${host ?? 'localhost'}:${port}: ${describe(cause)}`, {
      cause,
    });
  }
}

/** The kernel refused to send a datagram (unreachable network, broadcast without the flag, ...). */
export class SendError extends UdpError {
  constructor(port: number | undefined, host: string | undefined, cause: unknown) {
    super('ERR_UDP_SEND', `cannot send to ${host ?? '(connected peer)'}:${port ?? ''}: ${describe(cause)}`, {
      cause,
    });
  }
}

/** A multicast, broadcast or TTL socket option could not be applied. */
export class SocketOptionError extends UdpError {
  constructor(operation: string, cause: unknown) {
    super('ERR_UDP_SOCKET_OPTION', `${operation} failed: ${describe(cause)}`, { cause });
  }
}

/** A request got no reply: every attempt went unanswered or the overall deadline passed. */
export class TimeoutError extends UdpError {
  readonly attempts: number;
  readonly elapsed: number;

  constructor(attempts: number, elapsed: number) {
    super(
      'ERR_UDP_TIMEOUT',
      `no reply after ${attempts} attempt${attempts === 1 ? '' : 's'} in ${Math.round(elapsed)} ms`,
    );
    this.attempts = attempts;
    this.elapsed = elapsed;
  }
}

/** A `serve()` handler did not settle within `handlerTimeout`; the client got an error reply. */
export class HandlerTimeoutError extends UdpError {
  constructor(timeout: number) {
    super('ERR_UDP_HANDLER_TIMEOUT', `the request handler did not settle within ${timeout} ms`);
  }
}

/** The operation was cancelled through its `AbortSignal`. */
export class AbortError extends UdpError {
  constructor(cause?: unknown) {
    super('ERR_UDP_ABORTED', 'the operation was aborted', { cause });
  }
}

/** Too many requests are in flight on one requester (`maxPending`). */
export class TooManyPendingError extends UdpError {
  constructor(limit: number) {
    super('ERR_UDP_TOO_MANY_PENDING', `too many requests in flight (maxPending is ${limit})`);
  }
}

/** The responder's handler failed; the reply carried the error flag instead of a payload. */
export class RemoteError extends UdpError {
  constructor(message: string) {
    super(
      'ERR_UDP_REMOTE',
      message === '' ? 'the remote handler failed' : `remote handler failed: ${message}`,
    );
  }
}

/** A DNS message or TXT record cannot be encoded: a name, address or TXT entry is invalid, or it is too large. */
export class DnsEncodeError extends UdpError {
  constructor(message: string) {
    super('ERR_UDP_DNS_ENCODE', message);
  }
}

/** Probing found that another responder owns the name and `rename: false` forbids picking another. */
export class NameConflictError extends UdpError {
  readonly conflictingName: string;

  constructor(name: string) {
    super('ERR_UDP_NAME_CONFLICT', `the name ${JSON.stringify(name)} is already in use on the network`);
    this.conflictingName = name;
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code !== undefined && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return String(cause);
}
