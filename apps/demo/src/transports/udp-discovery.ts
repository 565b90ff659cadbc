import {
  createResponder,
  type DiscoveredService,
  defaultInterfaces,
  find,
  type MdnsResponder,
  queryUnicast,
  type TxtValue,
} from '@net/udp';
import { PROTOCOL_VERSION } from '../protocol/frames.js';

/** The DNS-SD service type every chat server advertises (RFC 6763). */
export const SERVICE_TYPE = '_net-chat._tcp';

/** What a chat server advertises besides its main (HTTP) port; all values are strings in TXT. */
export interface ChatEndpoints {
  tcp?: number;
  http?: number;
  tls?: number;
  https?: number;
  /** SPKI SHA-256 pin of the dev CA, so a client can verify TLS without the CA file. */
  caPin?: string;
  name: string;
}

export interface Discovery {
  /** The instance name after probing (`net-chat/0.1.0 (2)` when the first was taken). */
  readonly name: string;
  /** The port answering unicast DNS-SD queries (`--udp-port`). */
  readonly unicastPort: number;
  /** False when port 5353 could not be shared: only unicast DNS-SD works then. */
  readonly multicast: boolean;
  close(): Promise<void>;
}

function isIPv4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/**
 * Advertises this server as `_net-chat._tcp` over mDNS and answers unicast DNS-SD queries on
 * `port` (for `--discovery-host` across networks without multicast). Bound to one IPv4 address
 * (e.g. `--host 127.0.0.1`), it announces on that interface only, so tools on the same machine
 * (avahi-browse, dns-sd) find it.
 */
export async function startDiscovery(
  host: string,
  port: number,
  endpoints: ChatEndpoints,
): Promise<Discovery> {
  const main = endpoints.http ?? endpoints.tcp ?? endpoints.https ?? endpoints.tls;
  if (main === undefined) throw new Error('nothing to announce');
  const txt: Record<string, string | number> = { v: PROTOCOL_VERSION, path: '/ws' };
  for (const key of ['tcp', 'http', 'tls', 'https'] as const) {
    const v = endpoints[key];
    if (v !== undefined) txt[key] = v;
  }
  if (endpoints.caPin) txt.pin = endpoints.caPin;
  const specific = isIPv4(host) && host !== '0.0.0.0';
  const loopback = host === '::1' || host === 'localhost';
  const options = {
    ...(specific ? { interfaces: [host] } : loopback ? { interfaces: ['127.0.0.1'] } : {}),
    unicastPort: port,
    unicastAddress: specific ? host : loopback ? '127.0.0.1' : '0.0.0.0',
  };
  let responder: MdnsResponder;
  let multicast = true;
  try {
    responder = await createResponder(options);
  } catch {
    // Port 5353 held by a responder that does not share it (or no multicast at all): keep the
    // unicast DNS-SD port. If that fails too (--udp-port taken), its error is the one reported.
    multicast = false;
    responder = await createResponder({ ...options, multicast: false });
  }
  const service = responder.advertise({ name: endpoints.name, type: SERVICE_TYPE, port: main, txt });
  // "ready" should mean discoverable: wait for probing (about a second), but never block start-up on it.
  await Promise.race([service.ready.catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
  return {
    get name() {
      return service.name;
    },
    unicastPort: responder.transport.unicastPort ?? port,
    multicast,
    close: () => responder.close(),
  };
}

export interface FoundServer extends ChatEndpoints {
  host: string;
  /** The DNS-SD instance (`name._net-chat._tcp.local`), as announced. */
  instance: string;
}

function num(v: TxtValue | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/**
 * Everything a discovered server says is unauthenticated: control and format characters (terminal
 * escapes, bidi overrides, line separators) never reach the screen.
 */
export function cleanText(text: string, max = 100): string {
  return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '').slice(0, max);
}

function toFound(s: DiscoveredService, via?: string): FoundServer | undefined {
  const host = via ?? s.addresses.find((a) => !a.includes(':')) ?? s.addresses[0];
  if (!host) return undefined;
  const out: FoundServer = { host, name: cleanText(s.name) || '?', instance: s.fqdn };
  const t = s.txt;
  const tcp = num(t.tcp);
  const http = num(t.http);
  const tls = num(t.tls);
  const https = num(t.https);
  if (tcp) out.tcp = tcp;
  if (http) out.http = http;
  if (tls) out.tls = tls;
  if (https) out.https = https;
  if (!tcp && !http && !tls && !https) out.http = s.port;
  if (typeof t.pin === 'string' && /^(sha256\/)?[A-Za-z0-9+/=]{20,100}$/.test(t.pin)) out.caPin = t.pin;
  return out;
}

/** The interfaces the client browses on: every LAN interface plus loopback (servers on this machine). */
export function clientInterfaces(): string[] {
  return [...new Set([...defaultInterfaces(), '127.0.0.1'])];
}

/** Look for chat servers: `host` asks one machine's `--udp-port` directly (unicast DNS-SD), otherwise mDNS. */
export async function findServers(options: {
  discoveryPort: number;
  host?: string;
  timeoutMs?: number;
  limit?: number;
  interfaces?: string[];
}): Promise<FoundServer[]> {
  const timeout = options.timeoutMs ?? 2000;
  const found = options.host
    ? await queryUnicast({ host: options.host, port: options.discoveryPort, type: SERVICE_TYPE, timeout })
    : await find(SERVICE_TYPE, {
        interfaces: options.interfaces ?? clientInterfaces(),
        timeout,
        ...(options.limit ? { limit: options.limit } : {}),
      });
  return found.flatMap((s) => toFound(s, options.host) ?? []);
}
