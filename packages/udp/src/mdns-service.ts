/**
 * What a responder answers for: the host name with its addresses, and DNS-SD service instances
 * (PTR, SRV, TXT; RFC 6763 §4–§6). Each owns unique names that the responder probes and defends.
 */
import { EventEmitter } from 'node:events';
import { CLASS_IN, type DnsRecord, labelsToName, RR_A, RR_PTR, RR_SRV, RR_TXT } from './dns-message.js';
import { encodeTxt, type TxtInput } from './dns-txt.js';
import { InvalidArgumentError, NameConflictError } from './errors.js';

/** TTL of records that carry a host name (A, AAAA, SRV): RFC 6762 §10. */
export const HOST_TTL = 120;
/** TTL of the other records (PTR, TXT). */
export const OTHER_TTL = 4500;
/** What to advertise: one DNS-SD service instance (`advertise`, `responder.advertise`, `mdns.publish`). */
export interface AdvertiseOptions {
  /** Instance name, any UTF-8 up to 63 bytes, e.g. `'Chat on alice-laptop'`. */
  name: string;
  /** Service type `_name._tcp` or `_name._udp`, e.g. `'_net-chat._tcp'`. */
  type: string;
  port: number;
  /** TXT pairs (RFC 6763 §6). @default {} */
  txt?: TxtInput;
  /** Pick `name (2)`, `name (3)`, … when the name is taken. @default true */
  rename?: boolean;
  /** Probe before announcing (RFC 6762 §8.1); turn off only for names that are yours by construction. @default true */
  probe?: boolean;
}

/** What a service needs from the responder that runs it. */
export interface ServiceHost {
  readonly hostName: string;
  hostReady(): Promise<void>;
  probe(owner: Owner): Promise<'won' | 'conflict' | 'stopped'>;
  announce(owner: Owner, times?: number): Promise<void>;
  goodbye(records: DnsRecord[]): Promise<void>;
  forget(service: Service): void;
  readonly services: Service[];
}

const SERVICE_TYPE_ENUM = '_services._dns-sd._udp.local';

/** Events of an advertised {@link Service}. */
export interface ServiceEvents {
  /** Probing finished and the first announcement went out. */
  up: [];
  /** The name was taken; the service now uses `name`. */
  rename: [name: string, previous: string];
  /** Probing failed for good (`rename: false` and a conflict). */
  error: [error: Error];
}

/** Lifecycle of an advertised name: probing it, announced and defended, or stopped. */
export type State = 'probing' | 'announced' | 'stopped';

/** Something that owns unique names: the host, or one service instance. */
export interface Owner {
  state: State;
  conflict: boolean;
  lostTieBreak: boolean;
  uniqueNames(): string[];
  records(): DnsRecord[];
}

export function record(
  name: string,
  type: number,
  ttl: number,
  data: unknown,
  cacheFlush: boolean,
): DnsRecord {
  return { name, type, class: CLASS_IN, ttl, cacheFlush, data } as DnsRecord;
}

const TYPE_RE = /^_[a-z0-9-]{1,15}\._(tcp|udp)$/i;

/** One advertised DNS-SD service instance. */
export class Service extends EventEmitter<ServiceEvents> implements Owner {
  readonly type: string;
  readonly port: number;
  state: State = 'probing';
  conflict = false;
  lostTieBreak = false;
  #name: string;
  #txt: Uint8Array[];
  readonly #responder: ServiceHost;
  readonly #rename: boolean;
  readonly #probe: boolean;
  readonly ready: Promise<void>;

  /** @internal use `responder.advertise()` */
  constructor(responder: ServiceHost, options: AdvertiseOptions) {
    super();
    if (!TYPE_RE.test(options.type))
      throw new InvalidArgumentError(`service type ${options.type} must look like _name._tcp`);
    if (!(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)) {
      throw new InvalidArgumentError(`port ${options.port} must be 1..65535`);
    }
    const bytes = Buffer.byteLength(options.name);
    if (bytes < 1 || bytes > 63) throw new InvalidArgumentError('instance name must be 1..63 bytes of UTF-8');
    this.type = options.type;
    this.port = options.port;
    this.#name = options.name;
    this.#txt = encodeTxt(options.txt ?? {});
    this.#responder = responder;
    this.#rename = options.rename ?? true;
    this.#probe = options.probe ?? true;
    this.ready = this.#start();
    this.ready.catch(() => {});
  }

  get name(): string {
    return this.#name;
  }

  /** `name._type._tcp.local`, escaped. */
  get fqdn(): string {
    return `${labelsToName([this.#name])}.${this.type}.local`;
  }

  /** The names this service probes and defends: its instance name. */
  uniqueNames(): string[] {
    return [this.fqdn];
  }

  /** The records this service publishes: PTR (type and type enumeration), SRV and TXT. */
  records(): DnsRecord[] {
    const typeName = `${this.type}.local`;
    return [
      record(typeName, RR_PTR, OTHER_TTL, this.fqdn, false),
      record(SERVICE_TYPE_ENUM, RR_PTR, OTHER_TTL, typeName, false),
      record(
        this.fqdn,
        RR_SRV,
        HOST_TTL,
        { priority: 0, weight: 0, port: this.port, target: this.#responder.hostName },
        true,
      ),
      record(this.fqdn, RR_TXT, OTHER_TTL, this.#txt, true),
    ];
  }

  async #start(): Promise<void> {
    for (;;) {
      if (!this.#probe) break;
      const outcome = await this.#responder.probe(this);
      if (outcome === 'stopped') return;
      if (outcome === 'won') break;
      if (!this.#rename) {
        const err = new NameConflictError(this.fqdn);
        this.state = 'stopped';
        if (this.listenerCount('error') > 0) this.emit('error', err);
        throw err;
      }
      this.renameTo(nextName(this.#name));
    }
    await this.#responder.hostReady();
    if (this.state === 'stopped') return;
    this.state = 'announced';
    await this.#responder.announce(this);
    this.emit('up');
  }

  /** @internal */
  renameTo(name: string): void {
    const previous = this.#name;
    this.#name = name;
    this.emit('rename', name, previous);
  }

  /** Replaces the TXT record and announces the change (RFC 6763 §6.7 wants it kept current). */
  async updateTxt(txt: TxtInput): Promise<void> {
    const previous = this.records().filter((r) => r.type === RR_TXT);
    this.#txt = encodeTxt(txt);
    if (this.state !== 'announced') return;
    // A goodbye for the old TXT: caches that received it less than a second ago would otherwise
    // keep it next to the new one (the cache-flush bit spares records that young, §10.2).
    await this.#responder.goodbye(previous);
    await this.#responder.announce(this, 1);
  }

  /** Sends goodbyes for this service's records and stops answering for it. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasAnnounced = this.state === 'announced';
    this.state = 'stopped';
    this.#responder.forget(this);
    if (!wasAnnounced) return;
    // The type-enumeration PTR is shared by every service of this type: keep it while one remains.
    const typeStillServed = this.#responder.services.some(
      (s) => s.type === this.type && s.state !== 'stopped',
    );
    const keep = (r: DnsRecord) => !(typeStillServed && r.name === SERVICE_TYPE_ENUM);
    await this.#responder.goodbye(this.records().filter(keep));
  }
}

/** `name (2)` → `name (3)`; `host` → `host-2` for host names. */
export function nextName(name: string, style: 'instance' | 'host' = 'instance'): string {
  if (style === 'host') {
    const m = /^(.*)-(\d+)$/.exec(name);
    return m ? `${m[1]}-${Number(m[2]) + 1}` : `${name}-2`;
  }
  const m = /^(.*) \((\d+)\)$/.exec(name);
  const next = m ? `${m[1]} (${Number(m[2]) + 1})` : `${name} (2)`;
  // Keep within one label: shorten the base, not the counter.
  let base = m ? m[1]! : name;
  let out = next;
  while (Buffer.byteLength(out) > 63) {
    base = base.slice(0, -1);
    out = `${base} (${m ? Number(m[2]) + 1 : 2})`;
  }
  return out;
}

export class HostOwner implements Owner {
  state: State = 'probing';
  conflict = false;
  lostTieBreak = false;
  constructor(
    public label: string,
    readonly addresses: string[],
  ) {}
  get name(): string {
    return `${labelsToName([this.label])}.local`;
  }
  uniqueNames(): string[] {
    return [this.name];
  }
  records(): DnsRecord[] {
    return this.addresses.map((a) => record(this.name, RR_A, HOST_TTL, a, true));
  }
}
