/**
 * The entry points: each opens an mDNS transport, or shares one through {@link createMdns}, in
 * the manner of `bonjour-service` (publish, browse, find) with promises and `AbortSignal`.
 */
import {
  type BrowseOptions,
  Browser,
  type DiscoveredService,
  Querier,
  type QuerierOptions,
  resolveWith,
  TypeBrowser,
} from './mdns-browser.js';
import { Responder, type ResponderOptions } from './mdns-responder.js';
import type { AdvertiseOptions, Service } from './mdns-service.js';
import { MdnsTransport, type MdnsTransportOptions } from './mdns-transport.js';

export interface MdnsOptions extends ResponderOptions, QuerierOptions {}

/** Opens a responder on its own transport; `responder.advertise()` adds services. */
export async function createResponder(options: ResponderOptions = {}): Promise<Responder> {
  const transport = await MdnsTransport.open(options);
  return new Responder(transport, options, true);
}

/** An advertised service whose `close()` also closes the responder it opened. */
export interface Advertisement {
  service: Service;
  responder: Responder;
  /** Sends goodbyes for the service and closes the responder. */
  close(): Promise<void>;
}

/** Advertises one service and resolves once it probed and announced (name possibly renamed). */
export async function advertise(options: AdvertiseOptions & ResponderOptions): Promise<Advertisement> {
  const responder = await createResponder(options);
  const service = responder.advertise(options);
  try {
    await service.ready;
  } catch (err) {
    await responder.close();
    throw err;
  }
  return { service, responder, close: () => responder.close() };
}

/** Watches a service type (e.g. `'_net-chat._tcp'`) until `close()` or the signal aborts. */
export async function browse(
  type: string,
  options: BrowseOptions & QuerierOptions & MdnsTransportOptions = {},
): Promise<Browser> {
  const transport = await MdnsTransport.open(options);
  const querier = new Querier(transport, options, true);
  try {
    return new Browser(querier, type, options, () => querier.close());
  } catch (err) {
    await querier.close();
    throw err;
  }
}

/** Browses for `timeout` ms (or until `limit` instances are up) and returns what was found. */
export async function find(
  type: string,
  options: BrowseOptions & QuerierOptions & MdnsTransportOptions & { timeout?: number; limit?: number } = {},
): Promise<DiscoveredService[]> {
  const browser = await browse(type, options);
  const found: DiscoveredService[] = [];
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, options.timeout ?? 2000);
    browser.on('up', (s) => {
      found.push(s);
      if (found.length >= (options.limit ?? Number.POSITIVE_INFINITY)) done();
    });
    if (options.signal?.aborted) done();
    options.signal?.addEventListener('abort', done, { once: true });
  });
  await browser.close();
  return found;
}

/** Resolves one instance name (`My chat._net-chat._tcp.local`). */
export async function resolve(
  fqdn: string,
  options: QuerierOptions & MdnsTransportOptions & { timeout?: number; signal?: AbortSignal } = {},
): Promise<DiscoveredService> {
  const transport = await MdnsTransport.open(options);
  const querier = new Querier(transport, options, true);
  try {
    return await resolveWith(querier, fqdn, options);
  } finally {
    await querier.close();
  }
}

/** Service-type enumeration (RFC 6763 §9). */
export async function browseTypes(options: QuerierOptions & MdnsTransportOptions = {}): Promise<TypeBrowser> {
  const transport = await MdnsTransport.open(options);
  const querier = new Querier(transport, options, true);
  return new TypeBrowser(querier, () => querier.close());
}

/** One transport for publishing and browsing, like `new Bonjour()`. */
export class Mdns {
  readonly responder: Responder;
  readonly querier: Querier;

  /** @internal use {@link createMdns} */
  constructor(
    readonly transport: MdnsTransport,
    options: MdnsOptions,
  ) {
    this.responder = new Responder(transport, options, false);
    this.querier = new Querier(transport, options, false);
  }

  /** Advertises a service instance on this transport; `service.ready` settles once it is announced. */
  publish(options: AdvertiseOptions): Service {
    return this.responder.advertise(options);
  }

  /** Watches a service type on this transport; close the browser when done. */
  browse(type: string, options: BrowseOptions = {}): Browser {
    return new Browser(this.querier, type, options);
  }

  /** Resolves one instance name (`'Name._type._tcp.local'`) to its host, port, addresses and TXT. */
  resolve(
    fqdn: string,
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<DiscoveredService> {
    return resolveWith(this.querier, fqdn, options);
  }

  /** Lists the service types announced on the network (`_services._dns-sd._udp.local`). */
  browseTypes(): TypeBrowser {
    return new TypeBrowser(this.querier);
  }

  /** Goodbyes for every published service, then the socket closes. */
  async close(): Promise<void> {
    await this.responder.close();
    await this.querier.close();
    await this.transport.close();
  }
}

/** Opens one shared mDNS transport for publishing and browsing; `close()` it when done. */
export async function createMdns(options: MdnsOptions = {}): Promise<Mdns> {
  return new Mdns(await MdnsTransport.open(options), options);
}
