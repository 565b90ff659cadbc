import { type Announcer, announce, type DiscoveredService, discover } from '@net/udp';

export const SERVICE = 'net-chat';

/** What a chat server announces besides its main (HTTP) port; all values are strings on the wire. */
export interface ChatEndpoints {
  tcp?: number;
  http?: number;
  tls?: number;
  https?: number;
  /** SPKI SHA-256 pin of the dev CA, so a client can verify TLS without the CA file. */
  caPin?: string;
  name: string;
}

/** Announce this server over UDP multicast/broadcast and answer queries (@net/udp discovery). */
export function startDiscovery(host: string, port: number, endpoints: ChatEndpoints): Promise<Announcer> {
  const meta: Record<string, string> = { name: endpoints.name };
  for (const key of ['tcp', 'http', 'tls', 'https', 'caPin'] as const) {
    const v = endpoints[key];
    if (v !== undefined) meta[key] = String(v);
  }
  const main = endpoints.http ?? endpoints.tcp ?? endpoints.https ?? endpoints.tls;
  if (main === undefined) throw new Error('nothing to announce');
  return announce({
    service: SERVICE,
    port: main,
    meta,
    discoveryPort: port,
    bindAddress: host === '::' ? '0.0.0.0' : host,
    ...(host === '127.0.0.1' ? { interfaces: ['127.0.0.1'] } : {}),
  });
}

export interface FoundServer extends ChatEndpoints {
  host: string;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** Look for chat servers; `host` asks one machine directly (unicast), otherwise the LAN. */
export async function findServers(options: {
  discoveryPort: number;
  host?: string;
  timeoutMs?: number;
  limit?: number;
}): Promise<FoundServer[]> {
  const found: DiscoveredService[] = await discover({
    service: SERVICE,
    discoveryPort: options.discoveryPort,
    timeout: options.timeoutMs ?? 2000,
    queries: 3,
    ...(options.host ? { host: options.host } : {}),
    ...(options.limit ? { limit: options.limit } : {}),
  });
  return found.map((s) => {
    const m = s.meta;
    const out: FoundServer = { host: s.host, name: m.name ?? s.instance };
    const tcp = num(m.tcp);
    const http = num(m.http);
    const tls = num(m.tls);
    const https = num(m.https);
    if (tcp) out.tcp = tcp;
    if (http) out.http = http;
    if (tls) out.tls = tls;
    if (https) out.https = https;
    if (m.caPin) out.caPin = m.caPin;
    return out;
  });
}
