/**
 * The mDNS querier and DNS-SD browser (RFC 6762 §5, §7; RFC 6763 §4–§9): continuous querying
 * with doubling intervals, known answers, duplicate-question suppression, a bounded expiring
 * cache with re-query at 80–95 % of the TTL, and instances assembled from PTR, SRV, TXT and A/AAAA.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CLASS_IN,
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
  nameKey,
  nameToLabels,
  RR_A,
  RR_AAAA,
  RR_PTR,
  RR_SRV,
  RR_TXT,
  recordKey,
  type SrvData,
} from './dns-message.js';
import { decodeTxt, type TxtValue } from './dns-txt.js';
import { AbortError, InvalidArgumentError, TimeoutError } from './errors.js';
import { RecordCache } from './mdns-cache.js';
import type { MdnsTransport, Via } from './mdns-transport.js';
import type { RemoteInfo } from './socket.js';

/** The DNS-SD meta-query name whose PTR records list every service type on the network (RFC 6763 §9). */
export const SERVICE_TYPES = '_services._dns-sd._udp.local';
const MAX_QUERY_INTERVAL = 3_600_000;
const TICK = 100;

/** A resolved service instance. */
export interface DiscoveredService {
  /** Instance name as people read it, e.g. `Chat on alice (2)`. */
  name: string;
  /** Full escaped name, `Chat on alice (2)._net-chat._tcp.local`. */
  fqdn: string;
  /** `_net-chat._tcp` */
  type: string;
  /** SRV target host name, e.g. `alice.local`. */
  host: string;
  port: number;
  /** A and AAAA of `host`. */
  addresses: string[];
  /** Decoded TXT pairs (lower-case keys, null prototype). */
  txt: Record<string, TxtValue>;
  rawTxt: Uint8Array[];
}

/** Options of a {@link Querier}. */
export interface QuerierOptions {
  /** Most cached records; the ones closest to expiry go first. @default 4096 */
  maxCacheEntries?: number;
}

interface Question {
  name: string;
  type: number;
  users: number;
  interval: number;
  nextAt: number;
}

/** Owns the cache and the outgoing questions of one transport; browsers subscribe to it. */
export class Querier extends EventEmitter<{ change: [names: Set<string>]; tick: [] }> {
  readonly transport: MdnsTransport;
  readonly cache: RecordCache;
  readonly #questions = new Map<string, Question>();
  readonly #timer: NodeJS.Timeout;
  readonly #ownsTransport: boolean;
  #closed = false;
  /** Queries we treated as sent because another host asked the same (§7.3). */
  duplicateQuestionsSuppressed = 0;

  constructor(transport: MdnsTransport, options: QuerierOptions = {}, ownsTransport = false) {
    super();
    this.transport = transport;
    this.cache = new RecordCache(options.maxCacheEntries ?? 4096);
    this.#ownsTransport = ownsTransport;
    transport.on('message', this.#onMessage);
    this.#timer = setInterval(() => this.#tick(), TICK);
    this.#timer.unref();
  }

  /** Keeps asking `name`/`type` (first within 20–120 ms, then 1 s, 2 s, 4 s, … up to an hour) until released. */
  want(name: string, type: number): () => void {
    const key = `${nameKey(name)}|${type}`;
    let q = this.#questions.get(key);
    if (!q) {
      q = { name, type, users: 0, interval: 1000, nextAt: Date.now() + randomInt(20, 121) };
      this.#questions.set(key, q);
    }
    q.users++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      q.users--;
      if (q.users === 0) this.#questions.delete(key);
    };
  }

  readonly #onMessage = (message: DnsMessage, _rinfo: RemoteInfo, via: Via): void => {
    if (this.#closed || via !== 'mdns' || message.opcode !== 0) return;
    if (!message.response) {
      if (!this.transport.isOwnPacket(message)) this.#duplicateQuestions(message);
      return;
    }
    const now = Date.now();
    const changed = new Set<string>();
    for (const r of [...message.answers, ...message.additionals]) {
      if (r.class !== CLASS_IN) continue;
      const name = this.cache.add(r, now);
      if (name !== undefined || r.ttl === 0 || r.cacheFlush) changed.add(nameKey(r.name));
    }
    if (changed.size > 0) this.emit('change', changed);
  };

  /** §7.3: another host asked our question with no known answer we lack: count ours as sent. */
  #duplicateQuestions(message: DnsMessage): void {
    const theirs = new Set(message.answers.map((r) => recordKey({ ...r, ttl: 0, cacheFlush: false })));
    const now = Date.now();
    for (const q of message.questions) {
      if (q.unicastResponse) continue;
      const mine = this.#questions.get(`${nameKey(q.name)}|${q.type}`);
      if (!mine || mine.nextAt - now > mine.interval) continue;
      const known = this.cache.knownAnswers(q.name, q.type, now);
      if (known.every((r) => theirs.has(recordKey({ ...r, ttl: 0, cacheFlush: false })))) {
        mine.nextAt = now + mine.interval;
        mine.interval = Math.min(mine.interval * 2, MAX_QUERY_INTERVAL);
        this.duplicateQuestionsSuppressed++;
      }
    }
  }

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    const expired = this.cache.sweep(now);
    if (expired.size > 0) this.emit('change', expired);
    const ask: DnsQuestion[] = [];
    const seen = new Set<string>();
    for (const [key, q] of this.#questions) {
      if (q.nextAt > now) continue;
      ask.push({ name: q.name, type: q.type, class: CLASS_IN, unicastResponse: false });
      seen.add(key);
      q.nextAt = now + q.interval;
      q.interval = Math.min(q.interval * 2, MAX_QUERY_INTERVAL);
    }
    // §5.2: refresh records someone still wants at 80, 85, 90 and 95 % of their TTL.
    for (const r of this.cache.due(now)) {
      const key = `${nameKey(r.name)}|${r.type}`;
      if (seen.has(key) || !this.#isWanted(r)) continue;
      seen.add(key);
      ask.push({ name: r.name, type: r.type, class: CLASS_IN, unicastResponse: false });
    }
    if (ask.length > 0) this.#send(ask, now);
    this.emit('tick');
  }

  #isWanted(r: DnsRecord): boolean {
    if (this.#questions.has(`${nameKey(r.name)}|${r.type}`)) return true;
    // Records reached through a wanted PTR (SRV, TXT, addresses) are wanted too while browsed.
    return this.listenerCount('change') > 0 && r.type !== RR_PTR;
  }

  #send(questions: DnsQuestion[], now: number): void {
    const answers: DnsRecord[] = [];
    for (const q of questions) answers.push(...this.cache.knownAnswers(q.name, q.type, now));
    // Keep the known-answer list inside one packet; what does not fit is simply not listed.
    const message = { questions, answers: answers.slice(0, 40) };
    void this.transport.multicast(message).catch(() => {});
  }

  /** Stops querying; closes the transport too when this querier opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.transport.off('message', this.#onMessage);
    if (this.#ownsTransport) await this.transport.close();
  }
}

/** Events of a {@link Browser}, each with the instance as it is now. */
export interface BrowserEvents {
  up: [service: DiscoveredService];
  down: [service: DiscoveredService];
  changed: [service: DiscoveredService];
}

/** Options of `browse()`. */
export interface BrowseOptions {
  /** Stops the browser when aborted. */
  signal?: AbortSignal;
  /** How long to wait for address records before reporting an instance without addresses. @default 1500 ms */
  addressWait?: number;
}

interface Tracked {
  service: DiscoveredService | undefined;
  firstSeen: number;
  signature: string;
  releases: Array<() => void>;
}

/** Watches one service type: `up`, `down` and `changed` events, and the current list. */
export class Browser extends EventEmitter<BrowserEvents> {
  readonly type: string;
  readonly #querier: Querier;
  readonly #typeName: string;
  readonly #tracked = new Map<string, Tracked>();
  readonly #release: () => void;
  readonly #addressWait: number;
  #closed = false;
  readonly #onClose: (() => Promise<void>) | undefined;

  /** @internal use {@link browse} */
  constructor(querier: Querier, type: string, options: BrowseOptions = {}, onClose?: () => Promise<void>) {
    super();
    if (!/^_[A-Za-z0-9-]{1,15}\._(tcp|udp)$/.test(type) && type !== '_services._dns-sd._udp') {
      throw new InvalidArgumentError(`service type ${type} must look like _name._tcp`);
    }
    this.type = type;
    this.#querier = querier;
    this.#typeName = `${type}.local`;
    this.#addressWait = options.addressWait ?? 1500;
    this.#onClose = onClose;
    this.#release = querier.want(this.#typeName, RR_PTR);
    querier.on('change', this.#update);
    querier.on('tick', this.#update);
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** Instances currently up. */
  get services(): DiscoveredService[] {
    return [...this.#tracked.values()].flatMap((t) => (t.service ? [t.service] : []));
  }

  readonly #update = (): void => {
    if (this.#closed) return;
    const now = Date.now();
    const cache = this.#querier.cache;
    const present = new Set<string>();
    for (const ptr of cache.get(this.#typeName, RR_PTR, now)) {
      const fqdn = ptr.data as string;
      const key = nameKey(fqdn);
      present.add(key);
      let t = this.#tracked.get(key);
      if (!t) {
        if (this.#tracked.size >= this.#querier.cache.maxEntries) continue;
        t = { service: undefined, firstSeen: now, signature: '', releases: [] };
        this.#tracked.set(key, t);
      }
      const service = assemble(this.#querier, fqdn, this.type, now);
      const complete =
        service !== undefined && (service.addresses.length > 0 || now - t.firstSeen > this.#addressWait);
      if (!complete) {
        if (t.releases.length === 0) {
          t.releases.push(this.#querier.want(fqdn, RR_SRV), this.#querier.want(fqdn, RR_TXT));
          const target = service?.host;
          if (target) t.releases.push(this.#querier.want(target, RR_A));
        }
        if (t.service && !service) this.#down(key, t);
        continue;
      }
      for (const r of t.releases.splice(0)) r();
      const signature = JSON.stringify([
        service.host,
        service.port,
        service.addresses,
        service.rawTxt.map((b) => Buffer.from(b).toString('base64')),
      ]);
      if (!t.service) {
        t.service = service;
        t.signature = signature;
        this.emit('up', service);
      } else if (signature !== t.signature) {
        t.service = service;
        t.signature = signature;
        this.emit('changed', service);
      }
    }
    for (const [key, t] of this.#tracked) if (!present.has(key)) this.#down(key, t);
  };

  #down(key: string, t: Tracked): void {
    for (const r of t.releases.splice(0)) r();
    this.#tracked.delete(key);
    if (t.service) this.emit('down', t.service);
  }

  /** Stops watching: no more queries or events for this type, and the async iterator ends. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    for (const t of this.#tracked.values()) for (const r of t.releases) r();
    this.#querier.off('change', this.#update);
    this.#querier.off('tick', this.#update);
    await this.#onClose?.();
  }

  /** Yields each instance that comes up (those already known first) until `close()`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<DiscoveredService> {
    const queue: DiscoveredService[] = [...this.services];
    let wake: (() => void) | undefined;
    const onUp = (s: DiscoveredService) => {
      if (queue.length < 1024) queue.push(s);
      wake?.();
    };
    this.on('up', onUp);
    try {
      while (!this.#closed) {
        const next = queue.shift();
        if (next) yield next;
        else await new Promise<void>((r) => (wake = r));
      }
    } finally {
      this.off('up', onUp);
    }
  }
}

/** Builds the instance from the cache, or undefined while SRV or TXT is missing. */
export function assemble(
  querier: Querier,
  fqdn: string,
  type: string,
  now: number,
): DiscoveredService | undefined {
  const cache = querier.cache;
  // The newest wins while a replaced record lives out its last second.
  const srv = cache.get(fqdn, RR_SRV, now).at(-1);
  const txt = cache.get(fqdn, RR_TXT, now).at(-1);
  if (!srv || !txt) return undefined;
  const data = srv.data as SrvData;
  const addresses = [
    ...cache.get(data.target, RR_A, now).map((r) => r.data as string),
    ...cache.get(data.target, RR_AAAA, now).map((r) => r.data as string),
  ].sort();
  const rawTxt = txt.data as Uint8Array[];
  return {
    name: nameToLabels(fqdn)[0] ?? fqdn,
    fqdn,
    type,
    host: data.target,
    port: data.port,
    addresses,
    txt: decodeTxt(rawTxt),
    rawTxt,
  };
}

/** Resolves one instance (`Name._type._tcp.local`) to SRV, TXT and addresses. */
export function resolveWith(
  querier: Querier,
  fqdn: string,
  options: { timeout?: number; signal?: AbortSignal } = {},
): Promise<DiscoveredService> {
  const labels = nameToLabels(fqdn);
  const type = labels.slice(1, 3).join('.');
  const releases = [querier.want(fqdn, RR_SRV), querier.want(fqdn, RR_TXT)];
  const timeout = options.timeout ?? 3000;
  const started = Date.now();
  return new Promise<DiscoveredService>((resolve, reject) => {
    const check = () => {
      const s = assemble(querier, fqdn, type, Date.now());
      if (s && s.addresses.length === 0 && releases.length === 2) releases.push(querier.want(s.host, RR_A));
      if (s && (s.addresses.length > 0 || Date.now() - started > timeout / 2)) done(undefined, s);
    };
    const timer = setTimeout(() => done(new TimeoutError(1, timeout)), timeout);
    const onAbort = () => done(new AbortError());
    const done = (err: Error | undefined, s?: DiscoveredService) => {
      clearTimeout(timer);
      querier.off('change', check);
      querier.off('tick', check);
      options.signal?.removeEventListener('abort', onAbort);
      for (const r of releases) r();
      if (err) reject(err);
      else resolve(s!);
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    querier.on('change', check);
    querier.on('tick', check);
    check();
  });
}

/** Watches `_services._dns-sd._udp.local`: `up`/`down` with each service type seen (`_http._tcp`). */
export class TypeBrowser extends EventEmitter<{ up: [type: string]; down: [type: string] }> {
  readonly #querier: Querier;
  readonly #release: () => void;
  readonly #seen = new Set<string>();
  readonly #onClose: (() => Promise<void>) | undefined;

  /** @internal use {@link browseTypes} */
  constructor(querier: Querier, onClose?: () => Promise<void>) {
    super();
    this.#querier = querier;
    this.#onClose = onClose;
    this.#release = querier.want(SERVICE_TYPES, RR_PTR);
    querier.on('change', this.#update);
  }

  get types(): string[] {
    return [...this.#seen];
  }

  readonly #update = (): void => {
    const now = Date.now();
    const live = new Set(
      this.#querier.cache
        .get(SERVICE_TYPES, RR_PTR, now)
        .map((r) => (r.data as string).replace(/\.local\.?$/i, '')),
    );
    for (const t of live) {
      if (this.#seen.has(t) || this.#seen.size >= 1024) continue;
      this.#seen.add(t);
      this.emit('up', t);
    }
    for (const t of this.#seen) {
      if (live.has(t)) continue;
      this.#seen.delete(t);
      this.emit('down', t);
    }
  };

  /** Stops watching service types. */
  async close(): Promise<void> {
    this.#release();
    this.#querier.off('change', this.#update);
    await this.#onClose?.();
  }
}
