/**
 * The mDNS socket layer (RFC 6762 §5, §11): port 5353 shared with other responders
 * (`SO_REUSEADDR`), the 224.0.0.251 group joined on each chosen interface, multicast sent once
 * per interface from port 5353, and an optional plain unicast port for DNS-SD queries from
 * networks without multicast. Everything it receives is decoded here and handed on; it holds no
 * DNS state.
 */
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import {
  type DnsDecodeReason,
  type DnsDecodeStats,
  type DnsMessage,
  decodeMessage,
  encodeMessage,
  newDecodeStats,
} from './dns-message.js';
import { InvalidArgumentError } from './errors.js';
import { createSocket, type RemoteInfo, type UdpSocket } from './socket.js';

/** The mDNS UDP port (RFC 6762 §5). */
export const MDNS_PORT = 5353;
/** The IPv4 mDNS multicast group. */
export const MDNS_GROUP_IPV4 = '224.0.0.251';
/** The IPv6 mDNS multicast group (link-local scope). */
export const MDNS_GROUP_IPV6 = 'ff02::fb';

/** Options shared by everything that opens an mDNS transport. */
export interface MdnsTransportOptions {
  /**
   * IPv4 addresses of the interfaces to join the group on and to send from, e.g. `['127.0.0.1']`.
   * @default every non-internal IPv4 address; `['127.0.0.1']` when there is none
   */
  interfaces?: string[];
  /**
   * Use the mDNS port and group at all; `false` leaves only `unicastPort` (for hosts where 5353
   * is taken by a responder that does not share it). @default true
   */
  multicast?: boolean;
  /** Also use ff02::fb (on every non-loopback IPv6 interface; Linux refuses it on `lo`). @default false */
  ipv6?: boolean;
  /** mDNS port; only tests that must not meet other responders change it (0: a free port). @default 5353 */
  mdnsPort?: number;
  /** Largest datagram sent (answers are split into several, RFC 6762 §17). @default 1472 */
  maxMessageSize?: number;
  /**
   * Also answer plain unicast DNS queries on this UDP port (DNS-SD for networks without
   * multicast, e.g. `41234`); 0 picks a free port. @default none
   */
  unicastPort?: number;
  /** Address the unicast port binds. @default the first of `interfaces` */
  unicastAddress?: string;
}

/** Where a message arrived: the shared mDNS port or the optional unicast DNS-SD port. */
export type Via = 'mdns' | 'unicast';

/** Events of an {@link MdnsTransport}: decoded messages, refused datagrams, and send problems. */
export interface MdnsTransportEvents {
  message: [message: DnsMessage, rinfo: RemoteInfo, via: Via];
  invalid: [reason: DnsDecodeReason, rinfo: RemoteInfo];
  warning: [warning: Error];
}

/** Counters of an {@link MdnsTransport}. */
export interface MdnsTransportStats {
  received: number;
  sent: number;
  sendErrors: number;
  /** Decoded messages and refusals by reason. */
  decode: DnsDecodeStats;
}

/** The IPv4 addresses an mDNS transport uses by default: every non-internal one, else loopback. */
export function defaultInterfaces(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) if (info.family === 'IPv4' && !info.internal) out.push(info.address);
  }
  return out.length > 0 ? out : ['127.0.0.1'];
}

/** The mDNS sockets of one process: shared port 5353, the group joined per interface, a unicast port. */
export class MdnsTransport extends EventEmitter<MdnsTransportEvents> {
  readonly interfaces: readonly string[];
  readonly maxMessageSize: number;
  readonly #sockets: UdpSocket[] = [];
  #v4: UdpSocket | undefined;
  #v6: UdpSocket | undefined;
  #unicast: UdpSocket | undefined;
  #port: number;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  /**
   * Copies still expected of what we multicast (one per interface, looped back to this socket):
   * each arriving copy is consumed, so an identical packet from another responder still counts.
   */
  readonly #expectedEcho = new Map<string, number>();
  readonly stats: MdnsTransportStats = { received: 0, sent: 0, sendErrors: 0, decode: newDecodeStats() };

  private constructor(options: MdnsTransportOptions) {
    super();
    this.interfaces = options.interfaces ?? defaultInterfaces();
    this.maxMessageSize = options.maxMessageSize ?? 1472;
    this.#port = options.mdnsPort ?? MDNS_PORT;
    if (!(this.maxMessageSize >= 512 && this.maxMessageSize <= 9000)) {
      throw new InvalidArgumentError('maxMessageSize must be 512..9000');
    }
  }

  /** Opens and binds the sockets; rejects (closing what opened) when a port or group cannot be used. */
  static async open(options: MdnsTransportOptions = {}): Promise<MdnsTransport> {
    const t = new MdnsTransport(options);
    try {
      await t.#open(options);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  async #open(options: MdnsTransportOptions): Promise<void> {
    if (options.multicast === false) {
      if (options.unicastPort === undefined)
        throw new InvalidArgumentError('multicast: false needs a unicastPort');
      await this.#openUnicast(options);
      return;
    }
    // RFC 6762 §11: multicast goes out with IP TTL 255.
    const v4 = createSocket({ type: 'udp4', reuseAddr: true, multicastTTL: 255, multicastLoopback: true });
    this.#sockets.push(v4);
    this.#port = (await v4.bind(this.#port, '0.0.0.0')).port;
    this.#v4 = v4;
    let joined = 0;
    for (const iface of this.interfaces) {
      try {
        v4.addMembership(MDNS_GROUP_IPV4, iface);
        joined++;
      } catch (err) {
        this.#warn(err);
      }
    }
    if (joined === 0)
      throw new InvalidArgumentError(`could not join ${MDNS_GROUP_IPV4} on ${this.interfaces.join(', ')}`);
    v4.on('message', (data, rinfo) => this.#receive(data, rinfo, 'mdns'));
    if (options.ipv6) {
      try {
        const v6 = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true, multicastTTL: 255 });
        this.#sockets.push(v6);
        await v6.bind(this.#port, '::');
        for (const [name, list] of Object.entries(networkInterfaces())) {
          if (list?.some((i) => i.family === 'IPv6' && !i.internal))
            v6.addMembership(MDNS_GROUP_IPV6, `::%${name}`);
        }
        v6.on('message', (data, rinfo) => this.#receive(data, rinfo, 'mdns'));
        this.#v6 = v6;
      } catch (err) {
        this.#warn(err);
      }
    }
    await this.#openUnicast(options);
    for (const s of [this.#v4, this.#v6]) s?.on('warning', (e) => this.#warn(e));
  }

  async #openUnicast(options: MdnsTransportOptions): Promise<void> {
    if (options.unicastPort === undefined) return;
    const u = createSocket({ type: 'udp4' });
    this.#sockets.push(u);
    await u.bind(options.unicastPort, options.unicastAddress ?? this.interfaces[0] ?? '0.0.0.0');
    u.on('message', (data, rinfo) => this.#receive(data, rinfo, 'unicast'));
    u.on('warning', (e) => this.#warn(e));
    this.#unicast = u;
  }

  /** The mDNS port (5353 unless a test chose another). */
  get port(): number {
    return this.#port;
  }

  /** The bound unicast DNS-SD port, if any. */
  get unicastPort(): number | undefined {
    return this.#unicast?.address().port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #warn(err: unknown): void {
    if (this.listenerCount('warning') > 0)
      this.emit('warning', err instanceof Error ? err : new Error(String(err)));
  }

  #receive(data: Buffer, rinfo: RemoteInfo, via: Via): void {
    if (this.#closed) return;
    this.stats.received++;
    const result = decodeMessage(data, this.stats.decode);
    if (!result.ok) {
      this.emit('invalid', result.reason, rinfo);
      return;
    }
    this.emit('message', result.message, rinfo, via);
  }

  /** True when `data` is a copy of something this transport multicast recently (looped back). */
  isOwnPacket(message: DnsMessage): boolean {
    if (this.#expectedEcho.size === 0) return false;
    const key = Buffer.from(encodeMessage(message, { compress: false, maxSize: 65535 })).toString('base64');
    const left = this.#expectedEcho.get(key);
    if (left === undefined) return false;
    if (left <= 1) this.#expectedEcho.delete(key);
    else this.#expectedEcho.set(key, left - 1);
    return true;
  }

  /** Multicasts one message on every interface (and ff02::fb when open), in order. */
  multicast(message: Partial<DnsMessage>): Promise<void> {
    const bytes = encodeMessage(message, { maxSize: this.maxMessageSize });
    const key = Buffer.from(encodeMessage(message, { compress: false, maxSize: 65535 })).toString('base64');
    const copies = this.interfaces.length + (this.#v6 ? 1 : 0);
    this.#expectedEcho.set(key, (this.#expectedEcho.get(key) ?? 0) + copies);
    // Bounded: a copy that never came back (lost, or multicast loopback off) is forgotten.
    if (this.#expectedEcho.size > 64) this.#expectedEcho.delete(this.#expectedEcho.keys().next().value!);
    // The multicast interface is a socket-wide option, so the sends are serialised.
    const run = async (): Promise<void> => {
      const v4 = this.#v4;
      if (!v4 || this.#closed) return;
      for (const iface of this.interfaces) {
        try {
          v4.setMulticastInterface(iface);
          await v4.send(bytes, this.#port, MDNS_GROUP_IPV4);
          this.stats.sent++;
        } catch (err) {
          this.stats.sendErrors++;
          this.#warn(err);
        }
      }
      if (this.#v6) {
        try {
          await this.#v6.send(bytes, this.#port, MDNS_GROUP_IPV6);
          this.stats.sent++;
        } catch (err) {
          this.stats.sendErrors++;
          this.#warn(err);
        }
      }
    };
    const next = this.#chain.then(run);
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Sends one message to one address (a unicast answer); `via` picks the socket it leaves from. */
  async unicast(
    message: Partial<DnsMessage>,
    rinfo: { address: string; port: number },
    via: Via,
  ): Promise<void> {
    const socket = via === 'unicast' ? this.#unicast : rinfo.address.includes(':') ? this.#v6 : this.#v4;
    if (!socket || this.#closed) return;
    try {
      await socket.send(encodeMessage(message, { maxSize: this.maxMessageSize }), rinfo.port, rinfo.address);
      this.stats.sent++;
    } catch (err) {
      this.stats.sendErrors++;
      this.#warn(err);
    }
  }

  /** Waits for queued sends, then closes every socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#chain;
    this.#closed = true;
    await Promise.all(this.#sockets.map((s) => s.close()));
  }
}
