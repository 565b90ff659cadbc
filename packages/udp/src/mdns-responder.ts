/**
 * The mDNS responder with DNS-SD records (RFC 6762 §6–§10, RFC 6763 §4–§12): probes its names,
 * announces twice, answers queries (aggregated, delayed, rate limited, size bounded, with
 * known-answer and duplicate-answer suppression), defends and renames on conflict, says goodbye.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import {
  CLASS_IN,
  compareRecords,
  type DnsMessage,
  type DnsRecord,
  encodeMessage,
  nameKey,
  RR_A,
  RR_ANY,
  RR_NSEC,
  RR_PTR,
  RR_SRV,
  RR_TXT,
  recordKey,
} from './dns-message.js';
import { DnsEncodeError, InvalidArgumentError } from './errors.js';
import {
  type AdvertiseOptions,
  HostOwner,
  nextName,
  type Owner,
  record,
  Service,
  type ServiceHost,
  type State,
} from './mdns-service.js';
import type { MdnsTransport, MdnsTransportOptions, Via } from './mdns-transport.js';
import type { RemoteInfo } from './socket.js';

/** A unicast answer is at most this many times the size of the query that asked for it. */
export const AMPLIFICATION_LIMIT = 4;
const LEGACY_TTL = 10;
const PROBE_INTERVAL = 250;
const SERVICE_TYPE_ENUM = '_services._dns-sd._udp.local';

/** Options of an mDNS responder (`createResponder`, `advertise`, `createMdns`). */
export interface ResponderOptions extends MdnsTransportOptions {
  /** Host name published with A records (`.local` is appended). @default os.hostname() */
  host?: string;
  /** Unicast answers (QU and legacy queries) per second, a token bucket with twice this burst. @default 20 */
  unicastAnswersPerSecond?: number;
  /** Closes the responder when aborted. */
  signal?: AbortSignal;
}

/** Counters of an mDNS responder, for monitoring and tests. */
export interface ResponderStats {
  queries: number;
  multicastAnswers: number;
  unicastAnswers: number;
  /** Answers not sent: rate limit, known answers, another responder answered first. */
  suppressed: number;
  /** Unicast answers cut down to the amplification bound. */
  truncated: number;
  conflicts: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref?.());

/** Answers for the records of the host and of every advertised service on one transport. */
export class Responder extends EventEmitter<{ warning: [Error] }> implements ServiceHost {
  readonly transport: MdnsTransport;
  readonly #host: HostOwner;
  readonly #hostProbed: Promise<void>;
  readonly #services = new Set<Service>();
  readonly #ownsTransport: boolean;
  readonly #lastMulticast = new Map<string, number>();
  #pending: { records: Map<string, DnsRecord>; fireAt: number; timer: NodeJS.Timeout } | undefined;
  #tokens: number;
  #tokensAt = Date.now();
  readonly #rate: number;
  #closed = false;
  readonly stats: ResponderStats = {
    queries: 0,
    multicastAnswers: 0,
    unicastAnswers: 0,
    suppressed: 0,
    truncated: 0,
    conflicts: 0,
  };

  /** @internal use {@link createResponder} */
  constructor(transport: MdnsTransport, options: ResponderOptions, ownsTransport: boolean) {
    super();
    this.transport = transport;
    this.#ownsTransport = ownsTransport;
    this.#rate = options.unicastAnswersPerSecond ?? 20;
    this.#tokens = this.#rate * 2;
    const label =
      (options.host ?? hostname())
        .replace(/\.local\.?$/i, '')
        .replace(/[^A-Za-z0-9-]/g, '-')
        .slice(0, 63) || 'host';
    this.#host = new HostOwner(
      label,
      transport.interfaces.filter((a) => !a.includes(':')),
    );
    transport.on('message', this.#onMessage);
    transport.on('warning', (w) => this.listenerCount('warning') > 0 && this.emit('warning', w));
    this.#hostProbed = this.#probeHost();
    this.#hostProbed.catch(() => {});
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** The published host name, e.g. `alice-laptop.local` (renamed `alice-laptop-2.local` on conflict). */
  get hostName(): string {
    return this.#host.name;
  }

  get services(): Service[] {
    return [...this.#services];
  }

  /** Advertises a service; `await service.ready` for the end of probing and the first announcement. */
  advertise(options: AdvertiseOptions): Service {
    if (this.#closed) throw new InvalidArgumentError('responder is closed');
    const service = new Service(this, options);
    this.#services.add(service);
    return service;
  }

  /** Alias of {@link advertise}, as in `bonjour-service`. */
  publish(options: AdvertiseOptions): Service {
    return this.advertise(options);
  }

  async #probeHost(): Promise<void> {
    for (;;) {
      const outcome = await this.probe(this.#host);
      if (outcome !== 'conflict') break;
      this.#host.label = nextName(this.#host.label, 'host');
    }
    if (this.#host.state === 'stopped') return;
    this.#host.state = 'announced';
    // Services wait for this (not for the announcement) before they announce themselves.
    void this.announce(this.#host);
  }

  /** @internal Resolves once the host name is probed, so no SRV goes out without its A records. */
  hostReady(): Promise<void> {
    return this.#hostProbed;
  }

  /** @internal RFC 6762 §8.1: three probes 250 ms apart after a random 0–250 ms wait. */
  async probe(owner: Owner): Promise<'won' | 'conflict' | 'stopped'> {
    owner.state = 'probing';
    owner.conflict = false;
    owner.lostTieBreak = false;
    // Services probe alongside the host name: SRV names the host, whatever it ends up called.
    await sleep(randomInt(0, 250));
    for (let i = 0; i < 3; i++) {
      if (this.#closed || (owner.state as State) === 'stopped') return 'stopped';
      const records = owner.records().filter((r) => r.cacheFlush);
      await this.transport.multicast({
        questions: owner
          .uniqueNames()
          .map((name) => ({ name, type: RR_ANY, class: CLASS_IN, unicastResponse: i === 0 })),
        authorities: records.map((r) => ({ ...r, cacheFlush: false })),
      });
      await sleep(PROBE_INTERVAL);
      if (owner.conflict) {
        this.stats.conflicts++;
        return 'conflict';
      }
      if (owner.lostTieBreak) {
        // §8.2: the loser waits one second and probes again; the winner's announcement then
        // shows up as a conflict if the two really differ.
        owner.lostTieBreak = false;
        await sleep(1000);
        i = -1;
      }
    }
    return this.#closed || (owner.state as State) === 'stopped' ? 'stopped' : 'won';
  }

  /**
   * @internal Unsolicited responses (§8.3): `times` announcements one second apart. Resolves
   * after the first; the others follow on a timer, so `service.ready` does not wait for them.
   */
  async announce(owner: Owner, times = 2): Promise<void> {
    if (this.#closed || owner.state !== 'announced') return;
    const host = owner !== this.#host && this.#host.state === 'announced' ? this.#host.records() : [];
    await this.#sendMulticast([...owner.records(), ...host], true);
    if (times > 1) {
      const timer = setTimeout(() => void this.announce(owner, times - 1), 1000);
      timer.unref();
    }
  }

  /** @internal */
  forget(service: Service): void {
    this.#services.delete(service);
  }

  /** @internal §10.1: the records again with TTL 0. */
  async goodbye(records: DnsRecord[]): Promise<void> {
    if (this.transport.closed) return;
    await this.#sendMulticast(
      records.map((r) => ({ ...r, ttl: 0 })),
      true,
    );
  }

  #owners(): Owner[] {
    return [this.#host, ...this.#services];
  }

  #announcedRecords(): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const o of this.#owners()) if (o.state === 'announced') out.push(...o.records());
    return out;
  }

  readonly #onMessage = (message: DnsMessage, rinfo: RemoteInfo, via: Via): void => {
    if (this.#closed || message.opcode !== 0 || message.rcode !== 0) return;
    if (via === 'mdns' && this.transport.isOwnPacket(message)) return;
    if (message.response) this.#onResponse(message);
    else this.#onQuery(message, rinfo, via);
  };

  #onResponse(message: DnsMessage): void {
    const received = [...message.answers, ...message.additionals];
    for (const owner of this.#owners()) {
      if (owner.state === 'stopped') continue;
      const names = new Set(owner.uniqueNames().map(nameKey));
      const ours = new Set(owner.records().map((r) => recordKey({ ...r, ttl: 0 })));
      for (const r of received) {
        if (r.ttl === 0 || !names.has(nameKey(r.name))) continue;
        if (ours.has(recordKey({ ...r, ttl: 0 }))) continue;
        if (owner.state === 'probing') owner.conflict = true;
        else {
          // §9: a conflicting answer after announcing sends us back to probing (and renaming).
          this.stats.conflicts++;
          void this.#reprobe(owner);
        }
        break;
      }
    }
    // §7.4: another responder already multicast what we were about to say.
    if (this.#pending) {
      for (const r of message.answers) {
        const key = recordKey({ ...r, ttl: 0 });
        const mine = this.#pending.records.get(key);
        if (mine && r.ttl >= mine.ttl / 2) {
          this.#pending.records.delete(key);
          this.stats.suppressed++;
        }
      }
    }
  }

  async #reprobe(owner: Owner): Promise<void> {
    if (owner.state !== 'announced') return;
    let outcome = await this.probe(owner);
    while (outcome === 'conflict') {
      if (owner instanceof Service) owner.renameTo(nextName(owner.name));
      else this.#host.label = nextName(this.#host.label, 'host');
      outcome = await this.probe(owner);
    }
    if (outcome === 'won') {
      owner.state = 'announced';
      await this.announce(owner);
    }
  }

  #onQuery(message: DnsMessage, rinfo: RemoteInfo, via: Via): void {
    this.stats.queries++;
    // §8.2 simultaneous probes: the lexicographically later record set wins.
    if (message.authorities.length > 0) this.#tieBreak(message);
    const legacy = via === 'unicast' || rinfo.port !== this.transport.port;
    const records = this.#announcedRecords();
    const answers = new Map<string, DnsRecord>();
    let unicastWanted = legacy;
    let probeDefense = false;
    for (const q of message.questions) {
      if (q.class !== CLASS_IN && q.class !== RR_ANY) continue;
      const qn = nameKey(q.name);
      let matched = false;
      for (const r of records) {
        if (nameKey(r.name) !== qn) continue;
        matched = true;
        if (q.type !== RR_ANY && q.type !== r.type) continue;
        answers.set(recordKey({ ...r, ttl: 0 }), r);
        if (q.unicastResponse) unicastWanted = true;
        if (message.authorities.length > 0 && r.cacheFlush) probeDefense = true;
      }
      const nsec = matched && !answers.size ? this.#nsec(qn, records) : undefined;
      if (nsec) answers.set(recordKey({ ...nsec, ttl: 0 }), nsec);
    }
    // §7.1 known-answer suppression.
    for (const k of message.answers) {
      const key = recordKey({ ...k, ttl: 0 });
      const mine = answers.get(key);
      if (mine && k.ttl >= mine.ttl / 2) {
        answers.delete(key);
        this.stats.suppressed++;
      }
    }
    if (answers.size === 0) return;
    const additionals = this.#additionals([...answers.values()], records, answers);
    if (unicastWanted && !probeDefense) {
      this.#answerUnicast(message, rinfo, via, legacy, [...answers.values()], additionals);
      return;
    }
    this.#queueMulticast([...answers.values(), ...additionals], message, probeDefense);
  }

  #nsec(qn: string, records: DnsRecord[]): DnsRecord | undefined {
    const own = records.filter((r) => r.cacheFlush && nameKey(r.name) === qn);
    if (own.length === 0) return undefined;
    return record(
      own[0]!.name,
      RR_NSEC,
      own[0]!.ttl,
      { next: own[0]!.name, types: [...new Set(own.map((r) => r.type))] },
      true,
    );
  }

  /** RFC 6763 §12: PTR brings SRV, TXT and addresses; SRV brings addresses. */
  #additionals(answers: DnsRecord[], records: DnsRecord[], have: Map<string, DnsRecord>): DnsRecord[] {
    const out = new Map<string, DnsRecord>();
    const add = (name: string, types: number[]) => {
      for (const r of records) {
        if (nameKey(r.name) !== nameKey(name) || !types.includes(r.type)) continue;
        const key = recordKey({ ...r, ttl: 0 });
        if (!have.has(key)) out.set(key, r);
        if (r.type === RR_SRV) add((r.data as { target: string }).target, [RR_A]);
      }
    };
    for (const a of answers) {
      if (a.type === RR_PTR && a.name !== SERVICE_TYPE_ENUM) add(a.data as string, [RR_SRV, RR_TXT]);
      if (a.type === RR_SRV) add((a.data as { target: string }).target, [RR_A]);
    }
    return [...out.values()];
  }

  #tieBreak(message: DnsMessage): void {
    for (const owner of this.#owners()) {
      if (owner.state !== 'probing') continue;
      for (const name of owner.uniqueNames()) {
        const key = nameKey(name);
        const theirs = message.authorities.filter((r) => nameKey(r.name) === key).sort(compareRecords);
        if (theirs.length === 0) continue;
        const ours = owner
          .records()
          .filter((r) => r.cacheFlush && nameKey(r.name) === key)
          .sort(compareRecords);
        for (let i = 0; ; i++) {
          const a = ours[i];
          const b = theirs[i];
          if (!a && !b) break; // identical: the same data, no conflict
          if (!a || (b && compareRecords(a, b) < 0)) {
            owner.lostTieBreak = true;
            break;
          }
          if (!b || compareRecords(a, b) > 0) break;
        }
      }
    }
  }

  #takeToken(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#rate * 2, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#rate);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #answerUnicast(
    query: DnsMessage,
    rinfo: RemoteInfo,
    via: Via,
    legacy: boolean,
    answers: DnsRecord[],
    additionals: DnsRecord[],
  ): void {
    if (!this.#takeToken()) {
      this.stats.suppressed++;
      return;
    }
    const limit = Math.min(this.transport.maxMessageSize, AMPLIFICATION_LIMIT * Math.max(rinfo.size, 12));
    // §6.7 legacy unicast: echo id and questions, TTL ≤ 10 s, no cache-flush bits.
    const fix = (r: DnsRecord): DnsRecord =>
      legacy ? { ...r, cacheFlush: false, ttl: Math.min(r.ttl, LEGACY_TTL) } : r;
    const base: Partial<DnsMessage> = {
      id: legacy ? query.id : 0,
      response: true,
      authoritative: true,
      questions: legacy ? query.questions : [],
    };
    const fits = (m: Partial<DnsMessage>) => {
      try {
        return encodeMessage(m, { maxSize: limit }).length <= limit;
      } catch (err) {
        if (err instanceof DnsEncodeError) return false;
        throw err;
      }
    };
    const out: DnsRecord[] = [];
    const extra: DnsRecord[] = [];
    let truncated = false;
    for (const r of answers) {
      if (fits({ ...base, answers: [...out, fix(r)] })) out.push(fix(r));
      else truncated = true;
    }
    for (const r of additionals) {
      if (fits({ ...base, answers: out, additionals: [...extra, fix(r)] })) extra.push(fix(r));
    }
    if (truncated) this.stats.truncated++;
    if (out.length === 0 && !legacy) {
      // Nothing fits the bound: a port-5353 querier also listens to the group, so answer there.
      this.#queueMulticast([...answers, ...additionals], query, false);
      return;
    }
    this.stats.unicastAnswers++;
    void this.transport.unicast({ ...base, truncated, answers: out, additionals: extra }, rinfo, via);
  }

  /**
   * §6: answers wait 20–120 ms (unique-only answers and probe defence go at once) so several
   * questions share one packet, and a record is multicast at most once per second (every 250 ms
   * when defending a probe): an answer asked for sooner is deferred, not dropped, so a querier
   * that asked once right after an announcement still hears it.
   */
  #queueMulticast(records: DnsRecord[], query: DnsMessage, probeDefense: boolean): void {
    const now = Date.now();
    const minGap = probeDefense ? 250 : 1000;
    const onlyUnique = records.every((r) => r.cacheFlush);
    let fireAt =
      now + (probeDefense || onlyUnique ? 0 : query.truncated ? randomInt(400, 501) : randomInt(20, 121));
    for (const r of records) {
      const last = this.#lastMulticast.get(recordKey({ ...r, ttl: 0 }));
      if (last !== undefined) fireAt = Math.max(fireAt, last + minGap);
    }
    const pending = this.#pending;
    if (!pending) {
      this.#pending = { records: new Map(), fireAt, timer: setTimeout(() => this.#flush(), fireAt - now) };
    } else if (fireAt > pending.fireAt || (probeDefense && fireAt < pending.fireAt)) {
      clearTimeout(pending.timer);
      pending.fireAt = fireAt;
      pending.timer = setTimeout(() => this.#flush(), fireAt - now);
    }
    const into = this.#pending!.records;
    for (const r of records) {
      const key = recordKey({ ...r, ttl: 0 });
      if (into.has(key)) this.stats.suppressed++;
      else into.set(key, r);
    }
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending || this.#closed || pending.records.size === 0) return;
    this.stats.multicastAnswers++;
    void this.#sendMulticast([...pending.records.values()], false);
  }

  /** Splits records over as few packets as the size limit allows. */
  async #sendMulticast(records: DnsRecord[], unsolicited: boolean): Promise<void> {
    const now = Date.now();
    for (const r of records) this.#lastMulticast.set(recordKey({ ...r, ttl: 0 }), now);
    if (this.#lastMulticast.size > 4096) this.#lastMulticast.clear();
    let batch: DnsRecord[] = [];
    const packets: DnsRecord[][] = [];
    for (const r of records) {
      const next = [...batch, r];
      try {
        encodeMessage(
          { response: true, authoritative: true, answers: next },
          { maxSize: this.transport.maxMessageSize },
        );
        batch = next;
      } catch {
        if (batch.length === 0) continue; // one record larger than a packet: cannot be sent
        packets.push(batch);
        batch = [r];
      }
    }
    if (batch.length > 0) packets.push(batch);
    void unsolicited;
    for (const answers of packets)
      await this.transport.multicast({ response: true, authoritative: true, answers });
  }

  /** Goodbyes for everything announced, then the transport closes (when this responder opened it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const records = this.#announcedRecords();
    for (const s of this.#services) s.state = 'stopped';
    this.#host.state = 'stopped';
    if (this.#pending) clearTimeout(this.#pending.timer);
    this.#pending = undefined;
    if (records.length > 0) await this.goodbye(records).catch(() => {});
    this.#closed = true;
    this.transport.off('message', this.#onMessage);
    if (this.#ownsTransport) await this.transport.close();
  }
}
