import { createSocket, type UdpSocket } from '@net/udp';
import type { Metrics } from '../metrics.js';
import {
  type Announcement,
  decodeAnnouncement,
  encodeAnnouncement,
  encodeProbe,
  isProbe,
} from '../discovery.js';

export interface DiscoveryServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Answers discovery probes with this server's endpoints. Replies are capped at `maxRepliesPerSecond`
 * overall: UDP sources can be spoofed, so an unbounded responder is a reflection tool.
 */
export async function startDiscovery(
  host: string,
  port: number,
  announcement: () => Announcement,
  metrics?: Metrics,
  maxRepliesPerSecond = 50,
): Promise<DiscoveryServer> {
  const socket: UdpSocket = createSocket({ type: 'udp4' });
  let windowStart = Date.now();
  let replies = 0;
  socket.on('message', (data, rinfo) => {
    if (!isProbe(data)) {
      metrics?.rejectedInput('udp', 'bad_probe');
      return;
    }
    const now = Date.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      replies = 0;
    }
    if (++replies > maxRepliesPerSecond) {
      metrics?.rejectedInput('udp', 'rate_limited');
      return;
    }
    socket.post(encodeAnnouncement(announcement()), rinfo.port, rinfo.address);
  });
  // A bad datagram or an unreachable peer must never take the server down.
  socket.on('error', () => {});
  socket.on('warning', () => {});
  const bound = await socket.bind(port, host === '::' ? '0.0.0.0' : host);
  return { port: bound.port, address: bound.address, close: () => socket.close() };
}

export interface Discovered extends Announcement {
  /** The address the answer came from (used when `host` is null). */
  from: string;
}

/**
 * Probe for servers: broadcast on the LAN and ask each of `hosts` directly (broadcast does not
 * reach a server on the loopback interface). Resolves with every distinct answer within `timeoutMs`,
 * or early once `wanted` answers arrived.
 */
export async function discover(options: {
  port: number;
  hosts?: string[];
  broadcast?: boolean;
  timeoutMs?: number;
  wanted?: number;
}): Promise<Discovered[]> {
  const socket = createSocket({ type: 'udp4', broadcast: options.broadcast !== false });
  socket.on('error', () => {});
  socket.on('warning', () => {});
  await socket.bind(0);
  const found = new Map<string, Discovered>();
  const wanted = options.wanted ?? Number.POSITIVE_INFINITY;
  try {
    return await new Promise<Discovered[]>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        clearInterval(again);
        resolve([...found.values()]);
      };
      const timer = setTimeout(finish, options.timeoutMs ?? 1500);
      socket.on('message', (data, rinfo) => {
        const a = decodeAnnouncement(data);
        if (!a) return;
        const key = `${a.host ?? rinfo.address}:${a.http ?? a.tcp ?? a.https ?? a.tls}`;
        if (!found.has(key)) found.set(key, { ...a, from: rinfo.address });
        if (found.size >= wanted) finish();
      });
      const probe = encodeProbe();
      const send = () => {
        const targets = [...(options.hosts ?? [])];
        if (options.broadcast !== false) targets.push('255.255.255.255');
        for (const host of targets) socket.post(probe, options.port, host);
      };
      send();
      // UDP may drop a datagram: probe a few times within the window.
      const again = setInterval(send, 400);
    });
  } finally {
    await socket.close();
  }
}
