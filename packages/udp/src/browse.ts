import { EventEmitter } from 'node:events';
import {
  countInvalid,
  type DiscoveredService,
  type DiscoveryStats,
  encodeQuery,
  joinGroups,
  MAX_INSTANCES,
  newStats,
  randomQueryId,
  resolveTransport,
  sendEverywhere,
  type Transport,
  toService,
  configure,
} from './discovery.js';
import {
  decodeDiscoveryMessage,
  type DiscoveryInvalidReason,
  serviceNameProblem,
} from './discovery-message.js';
import { InvalidArgumentError, type UdpError } from './errors.js';
import type { BrowseOptions } from './options.js';
import { BoundedQueue } from './queue.js';
import { createSocket, type RemoteInfo, type UdpSocket } from './socket.js';

/** A change in the set of live instances. */
export interface BrowseEvent {
  type: 'up' | 'update' | 'down';
  service: DiscoveredService;
}

/** Events of {@link Browser}. */
export interface BrowserEvents {
  /** A new instance appeared. */
  up: [service: DiscoveredService];
  /** A known instance changed its port, ttl or meta. */
  update: [service: DiscoveredService];
  /** An instance said BYE or its announcement expired. */
  down: [service: DiscoveredService];
  /** A datagram was ignored. */
  invalid: [reason: DiscoveryInvalidReason, rinfo: RemoteInfo];
  /** A socket option or send failed; browsing continues on the remaining paths. */
  warning: [warning: UdpError | Error];
}

interface Entry {
  service: DiscoveredService;
  expires: number;
}

/**
 * Watches the LAN for announcements and keeps a live list of instances: `up` when one appears,
 * `update` when it changes, `down` on BYE or when its ttl runs out without a re-announcement.
 * Listens on the discovery port (shared with local announcers) for unsolicited announcements and
 * queries from a second, ephemeral socket so answers never land on an announcer sharing the port.
 */
export class Browser extends EventEmitter<BrowserEvents> implements AsyncIterable<BrowseEvent> {
  readonly #listener: UdpSocket;
  readonly #querier: UdpSocket;
  readonly #transport: Transport;
  readonly #service: string | null;
  readonly #host: string | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #queues = new Set<BoundedQueue<BrowseEvent>>();
  readonly #queryIds = new Set<number>();
  readonly #stats: DiscoveryStats = newStats({});
  #joined: string[] = [];
  #listenPort = 0;
  #sweep: NodeJS.Timeout | undefined;
  #requery: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  /** @internal use {@link browse} */
  constructor(options: BrowseOptions, listener: UdpSocket, querier: UdpSocket, transport: Transport) {
    super();
    this.#listener = listener;
    this.#querier = querier;
    this.#transport = transport;
    this.#service = options.service === undefined || options.service === '*' ? null : options.service;
    this.#host = options.host;
    listener.on('message', this.#onMessage);
    querier.on('message', this.#onMessage);
    listener.on('warning', this.#onWarning);
    querier.on('warning', this.#onWarning);
  }

  /** The live instances. */
  get services(): DiscoveredService[] {
    return [...this.#entries.values()].map((e) => e.service);
  }

  /** The port the passive listener is bound to (announcers must use the same `discoveryPort`; with `host` it is a free port). */
  get discoveryPort(): number {
    return this.#listenPort;
  }

  get stats(): DiscoveryStats {
    return { ...this.#stats, invalid: { ...this.#stats.invalid } };
  }

  /** Asks every announcer (or `host`) to answer now. */
  async query(): Promise<void> {
    if (this.#closing !== undefined) return;
    const queryId = randomQueryId();
    // Remember recent ids only: answers to older queries are still announcements, just unsolicited.
    this.#queryIds.add(queryId);
    if (this.#queryIds.size > 16) this.#queryIds.delete(this.#queryIds.values().next().value as number);
    const message = encodeQuery(this.#service, queryId, this.#transport.maxSize);
    if (this.#host !== undefined) {
      await this.#querier.send(message, this.#transport.port, this.#host).then(
        () => void this.#stats.sent++,
        (err: Error) => {
          this.#stats.sendErrors++;
          this.emit('warning', err);
        },
      );
      return;
    }
    const interfaces = this.#transport.multicast ? this.#transport.interfaces : [];
    await sendEverywhere(this.#querier, this.#transport, interfaces, message, this.#stats, this.#onWarning);
  }

  /** Events as an async iterator with a bounded queue (oldest events dropped when full). */
  events(options: { queueLimit?: number } = {}): AsyncIterableIterator<BrowseEvent> {
    const queue: BoundedQueue<BrowseEvent> = new BoundedQueue<BrowseEvent>(
      options.queueLimit ?? 1024,
      'drop-oldest',
      () => this.#queues.delete(queue),
    );
    if (this.#closing !== undefined) queue.end();
    else this.#queues.add(queue);
    return queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<BrowseEvent> {
    return this.events();
  }

  /** Stops browsing and closes both sockets. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    clearInterval(this.#sweep);
    clearInterval(this.#requery);
    for (const queue of this.#queues) queue.end();
    this.#queues.clear();
    this.#closing = Promise.all([this.#listener.close(), this.#querier.close()]).then(() => undefined);
    return this.#closing;
  }

  /** @internal */
  async start(queryInterval: number): Promise<void> {
    this.#listenPort = this.#listener.address().port;
    this.#joined = joinGroups(this.#listener, this.#transport, this.#onWarning);
    this.#sweep = setInterval(this.#expire, 1000);
    this.#sweep.unref();
    await this.query();
    if (queryInterval > 0) {
      this.#requery = setInterval(() => void this.query(), queryInterval);
      this.#requery.unref();
    }
  }

  /** Interfaces whose group membership succeeded (empty: only broadcast and unicast reach us). */
  get multicastInterfaces(): readonly string[] {
    return this.#joined;
  }

  readonly #onWarning = (err: Error): void => {
    this.emit('warning', err);
  };

  readonly #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    const message = decodeDiscoveryMessage(data, this.#transport.maxSize);
    if (message.type === 'invalid') {
      countInvalid(this.#stats, message.reason);
      this.emit('invalid', message.reason, rinfo);
      return;
    }
    this.#stats.received++;
    if (message.type === 'query') return;
    if (this.#service !== null && message.service !== this.#service) return;
    // Answers to queries we did not send are someone else's business.
    if (message.queryId !== 0 && !this.#queryIds.has(message.queryId)) return;
    const known = this.#entries.get(message.instance);
    if (message.type === 'bye') {
      if (known === undefined) return;
      this.#entries.delete(message.instance);
      this.#publish('down', known.service);
      return;
    }
    const expires = Date.now() + message.ttl * 1000;
    if (known === undefined) {
      if (this.#entries.size >= MAX_INSTANCES) return;
      const entry = { service: toService(message, rinfo.address), expires };
      this.#entries.set(message.instance, entry);
      this.#publish('up', entry.service);
      return;
    }
    known.expires = expires;
    const s = known.service;
    if (s.addresses.length < 16 && !s.addresses.includes(rinfo.address)) s.addresses.push(rinfo.address);
    if (s.port !== message.port || s.ttl !== message.ttl || !sameMeta(s.meta, message.meta)) {
      known.service = { ...s, port: message.port, ttl: message.ttl, meta: message.meta };
      this.#publish('update', known.service);
    }
  };

  readonly #expire = (): void => {
    const now = Date.now();
    for (const [instance, entry] of this.#entries) {
      if (entry.expires > now) continue;
      this.#entries.delete(instance);
      this.#publish('down', entry.service);
    }
  };

  #publish(type: BrowseEvent['type'], service: DiscoveredService): void {
    if (this.#queues.size > 0) {
      const event: BrowseEvent = { type, service };
      for (const queue of this.#queues) queue.push(event);
    }
    this.emit(type, service);
  }
}

/**
 * Starts browsing: binds the discovery port (shared with announcers via `SO_REUSEADDR`), joins the
 * group, sends a query and keeps the instance list current until `close()`.
 */
export async function browse(options: BrowseOptions = {}): Promise<Browser> {
  const service = options.service === undefined || options.service === '*' ? null : options.service;
  if (service !== null) {
    const problem = serviceNameProblem(service);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
  }
  const queryInterval = options.queryInterval ?? 0;
  if (!(queryInterval >= 0) || queryInterval > 2 ** 31 - 1) {
    throw new InvalidArgumentError('queryInterval must be 0..2147483647 ms');
  }
  const transport = resolveTransport(options);
  const listener = createSocket({ type: transport.type, reuseAddr: true });
  const querier = createSocket({ type: transport.type });
  const browser = new Browser(options, listener, querier, transport);
  try {
    const any = transport.type === 'udp4' ? '0.0.0.0' : '::';
    // With `host`, answers come back to the querier: the discovery port stays free for a local
    // announcer (a shared port would deliver unicast queries to only one of the sockets).
    const listenPort = options.host === undefined ? transport.port : 0;
    const bound = await listener.bind({ port: listenPort, address: options.bindAddress ?? any });
    // discoveryPort 0 (tests): queries go to the port the listener got, where announcers join in.
    if (options.host === undefined) transport.port = bound.port;
    await querier.bind(0, any);
    configure(querier, transport);
    await browser.start(queryInterval);
  } catch (err) {
    await browser.close();
    throw err;
  }
  const signal = options.signal;
  if (signal !== undefined) {
    if (signal.aborted) await browser.close();
    else signal.addEventListener('abort', () => void browser.close(), { once: true });
  }
  return browser;
}

function sameMeta(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}
