import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import {
  decodeDiscoveryMessage,
  type DiscoveryAnnouncement,
  type DiscoveryInvalidReason,
  type DiscoveryQuery,
  encodeDiscoveryMessage,
  MAX_DISCOVERY_MESSAGE,
  serviceNameProblem,
} from './discovery-message.js';
import { DiscoveryEncodeError, InvalidArgumentError, type UdpError } from './errors.js';
import {
  type AnnounceOptions,
  DISCOVERY_GROUP_IPV4,
  DISCOVERY_GROUP_IPV6,
  DISCOVERY_PORT,
  type DiscoverOptions,
  type DiscoveryTransportOptions,
} from './options.js';
import { createSocket, type RemoteInfo, type UdpSocket } from './socket.js';

/** One service instance found by {@link discover}. */
export interface DiscoveredService {
  service: string;
  /** 16 hex digits, stable for the lifetime of the announcing process. */
  instance: string;
  /** Address the first answer came from: use it to connect. */
  host: string;
  /** Every source address this instance answered from (one per network path). */
  addresses: string[];
  /** The announced service port. */
  port: number;
  /** Seconds the announcement is valid. */
  ttl: number;
  meta: Record<string, string>;
}

/** Counters of discovery traffic. `invalid` counts ignored datagrams by reason. */
export interface DiscoveryStats {
  /** Valid messages received. */
  received: number;
  /** Datagrams ignored as malformed, oversized or of an unknown version, by reason. */
  invalid: Partial<Record<DiscoveryInvalidReason, number>>;
  /** Total of `invalid`. */
  invalidTotal: number;
  /** Datagrams sent (queries, announcements, answers, byes). */
  sent: number;
  /** Sends that failed (e.g. broadcast or multicast not permitted). */
  sendErrors: number;
}

/** Counters of an {@link Announcer}. */
export interface AnnouncerStats extends DiscoveryStats {
  /** Queries matching our service. */
  queries: number;
  /** Unicast answers sent. */
  answers: number;
  /** Queries not answered because of the rate limit or the duplicate filter. */
  suppressed: number;
}

/** Events of {@link Announcer}. */
export interface AnnouncerEvents {
  /** A query for our service arrived (before it is answered). */
  query: [query: DiscoveryQuery, rinfo: RemoteInfo];
  /** A datagram was ignored. */
  invalid: [reason: DiscoveryInvalidReason, rinfo: RemoteInfo];
  /** Something degraded but the announcer keeps going (a group could not be joined, a send failed). */
  warning: [warning: UdpError | Error];
}

/** @internal */
export interface Transport {
  type: 'udp4' | 'udp6';
  port: number;
  group: string;
  interfaces: string[];
  multicast: boolean;
  broadcast: boolean;
  multicastTTL: number;
  maxSize: number;
}

const ANSWER_RATE_PER_SECOND = 50;
/** An answer may be at most this many times larger than the query that asked for it. */
export const AMPLIFICATION_LIMIT = 4;
const MAX_DELAYED_ANSWERS = 64;
/** Most distinct instances one discover() collects. */
export const MAX_INSTANCES = 1024;

/**
 * Announces one service instance on the LAN: answers matching queries (unicast, after a small
 * random delay), announces on start, every `interval` and on close (a BYE).
 */
export class Announcer extends EventEmitter<AnnouncerEvents> {
  readonly service: string;
  readonly port: number;
  readonly instance: string;
  readonly ttl: number;
  readonly socket: UdpSocket;
  readonly #transport: Transport;
  readonly #responseDelay: number;
  #meta: Record<string, string>;
  #announcement: Buffer;
  #joined: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #delayed = new Set<NodeJS.Timeout>();
  #recentAnswers = new Map<string, number>();
  #rateWindow = 0;
  #rateCount = 0;
  #closing: Promise<void> | undefined;
  readonly #stats: AnnouncerStats = newStats({ queries: 0, answers: 0, suppressed: 0 });

  /** @internal use {@link announce} */
  constructor(options: AnnounceOptions, socket: UdpSocket, transport: Transport) {
    super();
    this.service = options.service;
    this.port = options.port;
    this.ttl = options.ttl ?? 120;
    this.instance = randomBytes(8).toString('hex');
    this.socket = socket;
    this.#transport = transport;
    this.#responseDelay = options.responseDelay ?? 20;
    if (!(this.#responseDelay >= 0 && this.#responseDelay <= 10_000)) {
      throw new InvalidArgumentError('responseDelay must be 0..10000 ms');
    }
    this.#meta = { ...options.meta };
    this.#announcement = this.#encode('announce', 0);
    socket.on('message', this.#onMessage);
  }

  /** The UDP port the announcer listens on (useful with `discoveryPort: 0`). */
  get discoveryPort(): number {
    return this.#transport.port;
  }

  /** Interfaces whose multicast group was joined; empty means only broadcast/unicast work. */
  get multicastInterfaces(): readonly string[] {
    return this.#joined;
  }

  /** The announced metadata. */
  get meta(): Readonly<Record<string, string>> {
    return this.#meta;
  }

  get stats(): AnnouncerStats {
    return { ...this.#stats, invalid: { ...this.#stats.invalid } };
  }

  /** Replaces the metadata and announces the change. */
  async update(meta: Record<string, string>): Promise<void> {
    const previous = this.#meta;
    this.#meta = { ...meta };
    try {
      this.#announcement = this.#encode('announce', 0);
    } catch (err) {
      this.#meta = previous;
      throw err;
    }
    await this.announceNow();
  }

  /** Sends an unsolicited announcement to the group (and broadcast) now. */
  async announceNow(): Promise<void> {
    if (this.#closing !== undefined) return;
    await sendEverywhere(
      this.socket,
      this.#transport,
      this.#joined,
      this.#announcement,
      this.#stats,
      this.#warn,
    );
  }

  /** Sends a BYE, stops answering and closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    clearInterval(this.#timer);
    for (const timer of this.#delayed) clearTimeout(timer);
    this.#delayed.clear();
    const bye = this.#encode('bye', 0);
    this.#closing = (async () => {
      try {
        await sendEverywhere(this.socket, this.#transport, this.#joined, bye, this.#stats, this.#warn);
      } finally {
        this.socket.off('message', this.#onMessage);
        await this.socket.close();
      }
    })();
    return this.#closing;
  }

  readonly #warn = (err: Error): void => {
    this.emit('warning', err);
  };

  /** @internal */
  async start(interval: number): Promise<void> {
    this.#joined = joinGroups(this.socket, this.#transport, (err) => this.emit('warning', err));
    await this.announceNow();
    if (interval > 0) {
      this.#timer = setInterval(() => void this.announceNow(), interval);
      this.#timer.unref();
    }
  }

  #encode(type: 'announce' | 'bye', queryId: number): Buffer {
    try {
      return encodeDiscoveryMessage(
        {
          type,
          service: this.service,
          instance: this.instance,
          port: this.port,
          ttl: type === 'bye' ? 0 : this.ttl,
          queryId,
          meta: this.#meta,
        },
        this.#transport.maxSize,
      );
    } catch (err) {
      throw new DiscoveryEncodeError((err as Error).message);
    }
  }

  readonly #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    const message = decodeDiscoveryMessage(data, this.#transport.maxSize);
    if (message.type === 'invalid') {
      countInvalid(this.#stats, message.reason);
      this.emit('invalid', message.reason, rinfo);
      return;
    }
    this.#stats.received++;
    if (message.type !== 'query' || (message.service !== null && message.service !== this.service)) return;
    this.#stats.queries++;
    this.emit('query', message, rinfo);
    if (!this.#mayAnswer(message.queryId, rinfo)) {
      this.#stats.suppressed++;
      return;
    }
    const answer = this.#encode('announce', message.queryId);
    if (answer.byteLength > AMPLIFICATION_LIMIT * data.byteLength) {
      this.#stats.suppressed++;
      return;
    }
    const delay = Math.floor(Math.random() * this.#responseDelay);
    const timer = setTimeout(() => {
      this.#delayed.delete(timer);
      this.#stats.answers++;
      this.#stats.sent++;
      this.socket.send(answer, rinfo.port, rinfo.address).catch((err: Error) => {
        this.#stats.sendErrors++;
        this.emit('warning', err);
      });
    }, delay);
    this.#delayed.add(timer);
  };

  /** One answer per (querier, query) and a global rate limit, so queries cannot be used as an amplifier. */
  #mayAnswer(queryId: number, rinfo: RemoteInfo): boolean {
    const now = Date.now();
    if (now - this.#rateWindow >= 1000) {
      this.#rateWindow = now;
      this.#rateCount = 0;
    }
    if (this.#rateCount >= ANSWER_RATE_PER_SECOND || this.#delayed.size >= MAX_DELAYED_ANSWERS) return false;
    const key = `${rinfo.address} ${rinfo.port} ${queryId}`;
    const seen = this.#recentAnswers.get(key);
    if (seen !== undefined && now - seen < 5000) return false;
    this.#recentAnswers.delete(key);
    this.#recentAnswers.set(key, now);
    if (this.#recentAnswers.size > 256) {
      const oldest = this.#recentAnswers.keys().next();
      if (oldest.done !== true) this.#recentAnswers.delete(oldest.value);
    }
    this.#rateCount++;
    return true;
  }
}

/**
 * Starts announcing a service. Binds the discovery port (shared with other announcers through
 * `SO_REUSEADDR`), joins the multicast group and announces immediately.
 */
export async function announce(options: AnnounceOptions): Promise<Announcer> {
  const problem = serviceNameProblem(options.service);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new InvalidArgumentError(`port must be an integer in 1..65535, got ${String(options.port)}`);
  }
  const ttl = options.ttl ?? 120;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 65535)
    throw new InvalidArgumentError('ttl must be 1..65535 s');
  const interval = options.interval ?? (ttl * 1000) / 2;
  if (!(interval >= 0) || interval > 2 ** 31 - 1)
    throw new InvalidArgumentError('interval must be 0..2147483647 ms');
  const transport = resolveTransport(options);
  const socket = createSocket({ type: transport.type, reuseAddr: true });
  // Encoding once up front reports oversized meta before any socket work.
  let announcer: Announcer;
  try {
    announcer = new Announcer(options, socket, transport);
  } catch (err) {
    await socket.close();
    throw err;
  }
  try {
    const bound = await socket.bind({
      port: transport.port,
      address: options.bindAddress ?? (transport.type === 'udp4' ? '0.0.0.0' : '::'),
    });
    // discoveryPort 0: announcements and the BYE go to the port we actually got.
    transport.port = bound.port;
    configure(socket, transport);
    await announcer.start(interval);
  } catch (err) {
    await socket.close();
    throw err;
  }
  return announcer;
}

/**
 * Looks for service instances: sends a query (multicast and broadcast, or unicast to `host`),
 * collects answers and unsolicited announcements for `timeout` ms, and resolves with one entry
 * per instance. Never rejects because of what arrives on the wire; malformed answers are ignored.
 */
export async function discover(options: DiscoverOptions = {}): Promise<DiscoveredService[]> {
  const service = options.service === undefined || options.service === '*' ? null : options.service;
  if (service !== null) {
    const problem = serviceNameProblem(service);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
  }
  const timeout = options.timeout ?? 2000;
  if (!(timeout > 0) || timeout > 2 ** 31 - 1)
    throw new InvalidArgumentError('timeout must be 1..2147483647 ms');
  const queries = options.queries ?? 2;
  if (!Number.isInteger(queries) || queries < 1 || queries > 10)
    throw new InvalidArgumentError('queries must be 1..10');
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const transport = resolveTransport(options);
  if (options.host === undefined && transport.port === 0) {
    throw new InvalidArgumentError('discoveryPort 0 needs the announcer port: pass the actual port');
  }
  const queryId = randomQueryId();
  const query = encodeQuery(service, queryId, transport.maxSize);
  const found = new Map<string, DiscoveredService>();
  const gone = new Set<string>();
  const socket = createSocket({ type: transport.type });
  const signal = options.signal;
  if (signal?.aborted) return [];

  return new Promise<DiscoveredService[]>((resolve, reject) => {
    const timers: NodeJS.Timeout[] = [];
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      for (const timer of timers) clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      socket.close().then(() => resolve([...found.values()]), reject);
    };
    const onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
      const message = decodeDiscoveryMessage(data, transport.maxSize);
      if (message.type === 'invalid') {
        try {
          options.onInvalid?.(message.reason, rinfo);
        } catch {
          // Observers must not break collection.
        }
        return;
      }
      if (message.type !== 'announce' && message.type !== 'bye') return;
      if (service !== null && message.service !== service) return;
      if (message.queryId !== 0 && message.queryId !== queryId) return;
      if (message.type === 'bye') {
        found.delete(message.instance);
        if (gone.size < MAX_INSTANCES) gone.add(message.instance);
        return;
      }
      if (gone.has(message.instance)) return;
      const known = found.get(message.instance);
      if (known !== undefined) {
        if (known.addresses.length < 16 && !known.addresses.includes(rinfo.address)) {
          known.addresses.push(rinfo.address);
        }
        return;
      }
      // A flood of forged instances must not grow memory without bound.
      if (found.size >= MAX_INSTANCES) return;
      const entry = toService(message, rinfo.address);
      found.set(message.instance, entry);
      try {
        options.onService?.(entry);
      } catch {
        // A throwing callback must not break the collection of other answers.
      }
      if (found.size >= limit) finish();
    };
    const sendQuery = (): void => {
      if (finished) return;
      const done =
        options.host !== undefined
          ? socket.send(query, transport.port, options.host).then(noop)
          : sendEverywhere(socket, transport, transport.multicast ? transport.interfaces : [], query);
      done.catch(noop);
    };
    socket.on('message', onMessage);
    socket.on('warning', noop);
    signal?.addEventListener('abort', finish, { once: true });
    socket
      .bind(0, transport.type === 'udp4' ? '0.0.0.0' : '::')
      .then(() => {
        configure(socket, transport);
        timers.push(setTimeout(finish, timeout));
        for (let i = 0; i < queries; i++)
          timers.push(setTimeout(sendQuery, Math.floor((timeout * i) / (queries + 1))));
      })
      .catch((err: unknown) => {
        finished = true;
        signal?.removeEventListener('abort', finish);
        socket.close().finally(() => reject(err));
      });
  });
}

/** IPv4 interface addresses of this machine, loopback included. */
export function localIPv4Interfaces(): { address: string; netmask: string; internal: boolean }[] {
  const out: { address: string; netmask: string; internal: boolean }[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4')
        out.push({ address: info.address, netmask: info.netmask, internal: info.internal });
    }
  }
  return out;
}

/**
 * `::%name` for every non-loopback interface with an IPv6 address: link-local groups (ff02::)
 * need a scope, and the kernel's default route often has none. Falls back to the kernel's choice.
 */
function ipv6Scopes(): string[] {
  const scopes: string[] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (list?.some((info) => info.family === 'IPv6' && !info.internal)) scopes.push(`::%${name}`);
  }
  return scopes.length > 0 ? scopes : [''];
}

/** @internal A nonzero random query id (0 marks unsolicited announcements). */
export function randomQueryId(): number {
  return (randomBytes(4).readUInt32BE(0) || 1) >>> 0;
}

/** @internal A query padded to leave room for answers up to maxSize under the 4x amplification rule. */
export function encodeQuery(service: string | null, queryId: number, maxSize: number): Buffer {
  const fixed = 12 + (service?.length ?? 0);
  const padding = Math.max(0, Math.ceil(maxSize / AMPLIFICATION_LIMIT) - fixed);
  return encodeDiscoveryMessage({ type: 'query', service, queryId, padding }, maxSize);
}

/** @internal */
export function toService(message: DiscoveryAnnouncement, address: string): DiscoveredService {
  return {
    service: message.service,
    instance: message.instance,
    host: address,
    addresses: [address],
    port: message.port,
    ttl: message.ttl,
    meta: message.meta,
  };
}

/** @internal */
export function resolveTransport(options: DiscoveryTransportOptions): Transport {
  const type = options.type ?? 'udp4';
  if (type !== 'udp4' && type !== 'udp6') throw new InvalidArgumentError(`type must be 'udp4' or 'udp6'`);
  const port = options.discoveryPort ?? DISCOVERY_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('discoveryPort must be an integer in 0..65535');
  }
  const maxSize = options.maxMessageSize ?? MAX_DISCOVERY_MESSAGE;
  if (!Number.isInteger(maxSize) || maxSize < 64 || maxSize > MAX_DISCOVERY_MESSAGE) {
    throw new InvalidArgumentError(`maxMessageSize must be 64..${MAX_DISCOVERY_MESSAGE}`);
  }
  const multicastTTL = options.multicastTTL ?? 1;
  if (!Number.isInteger(multicastTTL) || multicastTTL < 0 || multicastTTL > 255) {
    throw new InvalidArgumentError('multicastTTL must be 0..255');
  }
  return {
    type,
    port,
    group: options.group ?? (type === 'udp4' ? DISCOVERY_GROUP_IPV4 : DISCOVERY_GROUP_IPV6),
    interfaces:
      options.interfaces ?? (type === 'udp4' ? localIPv4Interfaces().map((i) => i.address) : ipv6Scopes()),
    multicast: options.multicast ?? true,
    broadcast: options.broadcast ?? true,
    multicastTTL,
    maxSize,
  };
}

/** @internal */
export function configure(socket: UdpSocket, transport: Transport): void {
  // Failures here only narrow which paths work; sends on a missing path fail and are counted.
  try {
    if (transport.broadcast && transport.type === 'udp4') socket.setBroadcast(true);
  } catch (err) {
    socket.emit('warning', err as Error);
  }
  try {
    socket.setMulticastTTL(transport.multicastTTL);
    socket.setMulticastLoopback(true);
  } catch (err) {
    socket.emit('warning', err as Error);
  }
}

/** @internal */
export function joinGroups(socket: UdpSocket, transport: Transport, warn: (err: Error) => void): string[] {
  if (!transport.multicast) return [];
  const joined: string[] = [];
  for (const iface of transport.interfaces) {
    try {
      socket.addMembership(transport.group, iface === '' ? undefined : iface);
      joined.push(iface);
    } catch (err) {
      warn(err as Error);
    }
  }
  return joined;
}

/** Directed broadcast addresses of the given IPv4 interfaces (e.g. 192.168.1.255). */
function broadcastAddresses(interfaces: readonly string[]): string[] {
  const out = new Set<string>();
  const all = localIPv4Interfaces();
  for (const address of interfaces) {
    const info = all.find((i) => i.address === address);
    const netmask = info?.netmask ?? '255.255.255.255';
    const a = address.split('.').map(Number);
    const m = netmask.split('.').map(Number);
    if (a.length !== 4 || m.length !== 4) continue;
    out.add(a.map((part, i) => (part | (~m[i]! & 0xff)) & 0xff).join('.'));
  }
  if (out.size === 0) out.add('255.255.255.255');
  return [...out];
}

/** Sends to the group on every joined interface, then to every broadcast address. Never rejects. */
/** @internal */
export async function sendEverywhere(
  socket: UdpSocket,
  transport: Transport,
  multicastInterfaces: readonly string[],
  message: Buffer,
  stats?: DiscoveryStats,
  warn?: (err: Error) => void,
): Promise<void> {
  const attempt = async (host: string): Promise<void> => {
    if (socket.closed) return;
    try {
      await socket.send(message, transport.port, host);
      if (stats) stats.sent++;
    } catch (err) {
      if (stats) stats.sendErrors++;
      warn?.(err as Error);
    }
  };
  for (const iface of multicastInterfaces) {
    if (socket.closed) return;
    try {
      if (iface !== '') socket.setMulticastInterface(iface);
    } catch (err) {
      warn?.(err as Error);
      continue;
    }
    // Awaiting each send matters: the interface option is read when dgram actually sends.
    await attempt(transport.group);
  }
  if (!transport.broadcast) return;
  if (transport.type === 'udp6') await attempt('ff02::1');
  else for (const address of broadcastAddresses(transport.interfaces)) await attempt(address);
}

/** @internal */
export function newStats<T extends object>(extra: T): DiscoveryStats & T {
  return { received: 0, invalid: {}, invalidTotal: 0, sent: 0, sendErrors: 0, ...extra };
}

/** @internal */
export function countInvalid(stats: DiscoveryStats, reason: DiscoveryInvalidReason): void {
  stats.invalid[reason] = (stats.invalid[reason] ?? 0) + 1;
  stats.invalidTotal++;
}

function noop(): void {}
