import type { RunningServer } from './server.js';

/** What the server's debug log says arrived how: HTTPS requests and WebSockets, by client port. */
export interface Seen {
  requests: { method: string; path: string; version: string; port: number }[];
  sockets: { transport: string; port: number }[];
}

export function seen(server: RunningServer): Seen {
  const err = server.stderr();
  return {
    requests: [...err.matchAll(/ debug https: (\S+) (\S+) HTTP\/(\S+) from [^\s]+:(\d+)$/gm)].map((m) => ({
      method: m[1]!,
      path: m[2]!,
      version: m[3]!,
      port: Number(m[4]),
    })),
    sockets: [...err.matchAll(/ debug wss: WebSocket over (\S+) from [^\s]+:(\d+)$/gm)].map((m) => ({
      transport: m[1]!,
      port: Number(m[2]),
    })),
  };
}
