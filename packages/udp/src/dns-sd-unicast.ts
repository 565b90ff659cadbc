/**
 * DNS-SD over plain unicast DNS (RFC 6763 §10 without multicast): ask one host's responder on a
 * known UDP port, for networks where multicast does not reach. The query is padded with an
 * EDNS(0) Padding option (RFC 7830) so the answer fits the responder's amplification bound.
 */
import { randomInt } from 'node:crypto';
import {
  CLASS_IN,
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
  decodeMessage,
  encodeMessage,
  nameKey,
  nameToLabels,
  RR_A,
  RR_AAAA,
  RR_OPT,
  RR_PTR,
  RR_SRV,
  RR_TXT,
  type SrvData,
} from './dns-message.js';
import { decodeTxt } from './dns-txt.js';
import { AbortError, InvalidArgumentError } from './errors.js';
import type { DiscoveredService } from './mdns-browser.js';
import { createSocket } from './socket.js';

/** Options of {@link queryUnicast}: whom to ask, for which type, and how long. */
export interface UnicastQueryOptions {
  /** The host to ask. */
  host: string;
  /** Its unicast DNS-SD port (a responder's `unicastPort`). */
  port: number;
  /** Service type, e.g. `'_net-chat._tcp'`. */
  type: string;
  /** Overall time limit in ms. @default 2000 */
  timeout?: number;
  /** Query transmissions within `timeout`. @default 3 */
  attempts?: number;
  /** Query size after padding; the answer may be 4× this. @default 400 */
  padTo?: number;
  signal?: AbortSignal;
}

function padding(questionsSize: number, padTo: number): DnsRecord {
  // OPT: root name, type 41, class = our UDP payload size, option 12 (Padding) of zero bytes.
  const pad = Math.max(0, padTo - questionsSize - 11 - 4);
  const rdata = new Uint8Array(4 + pad);
  rdata[1] = 12;
  rdata[2] = pad >> 8;
  rdata[3] = pad & 0xff;
  return { name: '', type: RR_OPT, class: 1472, cacheFlush: false, ttl: 0, data: rdata };
}

/** Sends the query until an answer names at least one complete instance, or the time is up. */
export async function queryUnicast(options: UnicastQueryOptions): Promise<DiscoveredService[]> {
  if (!/^_[A-Za-z0-9-]{1,15}\._(tcp|udp)$/.test(options.type)) {
    throw new InvalidArgumentError(`service type ${options.type} must look like _name._tcp`);
  }
  const timeout = options.timeout ?? 2000;
  const attempts = Math.max(1, Math.min(options.attempts ?? 3, 10));
  const family = options.host.includes(':') ? 'udp6' : 'udp4';
  const socket = createSocket(family);
  await socket.bind(0, family === 'udp6' ? '::' : '0.0.0.0');
  const records: DnsRecord[] = [];
  const typeName = `${options.type}.local`;
  const ask = (questions: DnsQuestion[]) => {
    const id = randomInt(1, 65536);
    const bare = encodeMessage({ id, questions }).length;
    const bytes = encodeMessage({ id, questions, additionals: [padding(bare, options.padTo ?? 400)] });
    socket.post(bytes, options.port, options.host);
  };
  const instances = () => {
    const out: DiscoveredService[] = [];
    for (const ptr of records.filter((r) => r.type === RR_PTR && nameKey(r.name) === nameKey(typeName))) {
      const fqdn = ptr.data as string;
      const srv = records.find((r) => r.type === RR_SRV && nameKey(r.name) === nameKey(fqdn));
      const txt = records.find((r) => r.type === RR_TXT && nameKey(r.name) === nameKey(fqdn));
      if (!srv || !txt) continue;
      const target = (srv.data as SrvData).target;
      const addresses = records
        .filter((r) => (r.type === RR_A || r.type === RR_AAAA) && nameKey(r.name) === nameKey(target))
        .map((r) => r.data as string);
      if (out.some((s) => nameKey(s.fqdn) === nameKey(fqdn))) continue;
      out.push({
        name: nameToLabels(fqdn)[0] ?? fqdn,
        fqdn,
        type: options.type,
        host: target,
        port: (srv.data as SrvData).port,
        // The host we asked is reachable by definition; its own address list may name other networks.
        addresses: [options.host, ...addresses.filter((a) => a !== options.host)],
        txt: decodeTxt(txt.data as Uint8Array[]),
        rawTxt: txt.data as Uint8Array[],
      });
    }
    return out;
  };
  try {
    return await new Promise<DiscoveredService[]>((resolve, reject) => {
      let sent = 0;
      const followUps = new Set<string>();
      const send = () => {
        if (sent >= attempts) return;
        sent++;
        ask([{ name: typeName, type: RR_PTR, class: CLASS_IN, unicastResponse: false }]);
      };
      const interval = setInterval(send, timeout / attempts);
      const deadline = setTimeout(() => finish(), timeout);
      const onAbort = () => finish(new AbortError());
      const finish = (err?: Error) => {
        clearInterval(interval);
        clearTimeout(deadline);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(instances());
      };
      if (options.signal?.aborted) return finish(new AbortError());
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('message', (data, rinfo) => {
        if (rinfo.port !== options.port) return;
        const result = decodeMessage(data);
        if (!result.ok || !result.message.response) return;
        const m: DnsMessage = result.message;
        for (const r of [...m.answers, ...m.additionals]) if (records.length < 1024) records.push(r);
        // A truncated answer left some instances without SRV/TXT: ask for those directly.
        for (const ptr of records.filter((r) => r.type === RR_PTR)) {
          const fqdn = ptr.data as string;
          if (
            followUps.has(fqdn) ||
            records.some((r) => r.type === RR_SRV && nameKey(r.name) === nameKey(fqdn))
          )
            continue;
          followUps.add(fqdn);
          ask([
            { name: fqdn, type: RR_SRV, class: CLASS_IN, unicastResponse: false },
            { name: fqdn, type: RR_TXT, class: CLASS_IN, unicastResponse: false },
          ]);
        }
        const ptrs = records.filter((r) => r.type === RR_PTR && nameKey(r.name) === nameKey(typeName)).length;
        if (
          ptrs > 0 &&
          instances().length >=
            new Set(records.filter((r) => r.type === RR_PTR).map((r) => nameKey(r.data as string))).size
        ) {
          finish();
        }
      });
      send();
    });
  } finally {
    await socket.close();
  }
}
