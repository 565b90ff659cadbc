/**
 * One options type per entry point, with documented defaults and limits. The numeric defaults
 * are exported so callers (and the README) never disagree with the code.
 */

/** Largest UDP payload over IPv4: 65,535 − 20 (IPv4 header) − 8 (UDP header). */
export const MAX_PAYLOAD_IPV4 = 65_507;
/** Largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header). */
export const MAX_PAYLOAD_IPV6 = 65_527;
/** Largest IPv4 payload that fits a 1,500-byte Ethernet MTU unfragmented: 1500 − 20 − 8. */
export const SAFE_PAYLOAD_IPV4 = 1_472;
/** Largest IPv6 payload that fits a 1,500-byte Ethernet MTU unfragmented: 1500 − 40 − 8. */
export const SAFE_PAYLOAD_IPV6 = 1_452;

/** What to do when a send exceeds the safe payload size. */
export type UnsafePayloadPolicy = 'allow' | 'warn' | 'reject';

/** Which datagram to lose when an async iterator's queue is full. */
export type OverflowPolicy = 'drop-newest' | 'drop-oldest';

/** Options of {@link createSocket}. */
export interface SocketOptions {
  /** Address family. @default 'udp4' */
  type?: 'udp4' | 'udp6';
  /** `SO_REUSEADDR`: let several sockets bind the same port (needed for multicast listeners). @default false */
  reuseAddr?: boolean;
  /** For `udp6`: refuse IPv4-mapped traffic (`IPV6_V6ONLY`). @default false */
  ipv6Only?: boolean;
  /** Kernel receive buffer (`SO_RCVBUF`) in bytes, applied at bind. @default kernel default */
  recvBufferSize?: number;
  /** Kernel send buffer (`SO_SNDBUF`) in bytes, applied at bind. @default kernel default */
  sendBufferSize?: number;
  /**
   * Hard upper bound for one outgoing payload; larger sends reject with `ERR_UDP_DATAGRAM_TOO_LARGE`
   * before the kernel sees them. Cannot exceed the protocol maximum.
   * @default 65507 for udp4, 65527 for udp6
   */
  maxPayload?: number;
  /** Payload size above which IP fragmentation is likely. @default 1472 for udp4, 1452 for udp6 */
  safePayload?: number;
  /**
   * Policy for payloads above `safePayload`: `'allow'` sends silently, `'warn'` emits one `warning`
   * event per socket (an `UnsafePayloadError`), `'reject'` rejects the send.
   * @default 'allow'
   */
  unsafePayload?: UnsafePayloadPolicy;
  /** Datagrams buffered per async iterator before the overflow policy applies. @default 1024 */
  queueLimit?: number;
  /** Which datagram an async iterator loses when its queue is full (counted in `stats.dropped`). @default 'drop-newest' */
  overflow?: OverflowPolicy;
  /** Enable `SO_BROADCAST` at bind. @default false */
  broadcast?: boolean;
  /** Unicast TTL (`IP_TTL`) applied at bind, 1–255. @default kernel default (64) */
  ttl?: number;
  /** Multicast TTL applied at bind, 0–255. @default 1 (stays on the local network) */
  multicastTTL?: number;
  /** Deliver our own multicast datagrams back to local listeners. @default true */
  multicastLoopback?: boolean;
  /** Local interface address for outgoing multicast, e.g. `'127.0.0.1'` or `'::%eth0'`. @default kernel choice */
  multicastInterface?: string;
  /** Closes the socket when aborted. */
  signal?: AbortSignal;
}

/** Options of `UdpSocket.bind()`. */
export interface BindOptions {
  /** Port to bind; 0 picks a free port. @default 0 */
  port?: number;
  /** Local address to bind. @default '0.0.0.0' for udp4, '::' for udp6 */
  address?: string;
  /** Share the port with other processes in a cluster (Node `exclusive` inverted). @default true (exclusive) */
  exclusive?: boolean;
}

/** Exponential backoff between retransmissions of a request. */
export interface BackoffOptions {
  /** Wait before the first retransmission, in ms. @default 200 */
  initial?: number;
  /** Multiplier applied to the wait after every attempt. @default 2 */
  factor?: number;
  /** Upper bound of one wait, in ms. @default 2000 */
  max?: number;
  /** Random spread of each wait, as a fraction (0.2 = ±20 %), to de-synchronise clients. @default 0.2 */
  jitter?: number;
}

/** Options of `Requester.request()` and the standalone {@link request}. */
export interface RequestOptions {
  /** Destination port (optional on a connected socket). */
  port?: number;
  /** Destination host. @default '127.0.0.1' for udp4, '::1' for udp6 (or the connected peer) */
  host?: string;
  /** Overall deadline for all attempts together, in ms. @default 5000 */
  timeout?: number;
  /** Retransmissions after the first attempt. @default 4 */
  retries?: number;
  /** Backoff between attempts; `false` retransmits at a fixed `initial` interval of 200 ms. */
  backoff?: BackoffOptions | false;
  /** Cancels the request, rejecting with `ERR_UDP_ABORTED`. */
  signal?: AbortSignal;
}

/** Options of {@link createRequester}. */
export interface RequesterOptions {
  /** Requests in flight at once; more reject with `ERR_UDP_TOO_MANY_PENDING`. @default 1024 */
  maxPending?: number;
  /** Defaults merged into every `request()` call. */
  defaults?: RequestOptions;
  /** How many finished request ids are remembered to tell late replies from strangers. @default 1024 */
  recentIds?: number;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * Replies remembered per (peer, id) so retransmitted requests are answered without re-running the
   * handler. Must be greater than `maxConcurrent`: a running handler's entry is never evicted.
   * @default 1024
   */
  cacheSize?: number;
  /** How long a cached reply is kept, in ms; should exceed the clients' request timeout. @default 30000 */
  cacheTtl?: number;
  /**
   * Handlers running at once, counting timed-out handlers until their promise settles; requests
   * beyond this are dropped (the client retries).
   * @default 256
   */
  maxConcurrent?: number;
  /**
   * Send the handler's error message back to the client in the error reply. Off by default so
   * internal details do not leak onto the network; the client then sees a generic `ERR_UDP_REMOTE`.
   * @default false
   */
  exposeErrors?: boolean;
  /**
   * Longest a handler's promise may take. After that the client gets an error reply, the handler's
   * `request.signal` is aborted and its eventual result is discarded (`ERR_UDP_HANDLER_TIMEOUT` is
   * emitted as `handlerError`); it keeps counting toward `maxConcurrent` until it settles.
   * @default 10000
   */
  handlerTimeout?: number;
  /**
   * Per-source-address token bucket on incoming requests (fresh and retransmitted): beyond it
   * requests are dropped silently and counted (`stats.rateLimited`). Bounds how many replies a
   * spoofed source can draw. Loopback sources (127/8, ::1) cannot come from another host and are
   * exempt unless `loopback: true`. `false` disables the limit.
   * @default { rate: 500, burst: max(1000, rate), loopback: false }
   */
  rateLimit?: false | { rate?: number; burst?: number; loopback?: boolean };
  /**
   * How many times one cached reply is sent again for retransmissions of the same (peer, id); later
   * copies are dropped (`stats.replaysRefused`). Keep it at or above the clients' `retries`.
   * @default 8
   */
  maxReplays?: number;
  /**
   * Largest reply, as a multiple of the request datagram's size. A larger reply is replaced by an
   * empty error reply (`ERR_UDP_REMOTE` at the client); clients pad requests to allow more.
   * @default Infinity (off)
   */
  maxAmplification?: number;
}
