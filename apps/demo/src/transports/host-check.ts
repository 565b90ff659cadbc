import { hostname, networkInterfaces } from 'node:os';

/**
 * The Host names this server answers to (DNS rebinding defence): a page on
 * `rebind.attacker.example` whose name later resolves to this machine still sends
 * `Host: rebind.attacker.example`, and is refused. Defaults: the localhost names, the machine's
 * host name (and `<name>.local`), and the bound address, or every local address when bound to
 * the wildcard; `--host-name` adds names.
 */
export function allowedHostNames(bindHost: string, configured: readonly string[]): Set<string> {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
  const host = hostname().toLowerCase();
  if (host) {
    names.add(host);
    names.add(`${host}.local`);
  }
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    for (const list of Object.values(networkInterfaces())) {
      for (const i of list ?? []) names.add(i.address.toLowerCase().split('%')[0]!);
    }
  } else names.add(bindHost.toLowerCase());
  for (const n of configured) names.add(n.toLowerCase());
  return names;
}

/** The name part of a Host header: without the port, IPv6 brackets and a trailing dot. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  return (colon === -1 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

/**
 * A check for the Host header. A request without Host (HTTP/1.0) passes: a browser always
 * sends one, so the rebinding attack always has one. Names `*.localhost` resolve to loopback.
 */
export function hostCheck(allowed: ReadonlySet<string>): (header: string | undefined) => boolean {
  return (header) => {
    if (header === undefined) return true;
    const name = hostOf(header);
    return allowed.has(name) || name.endsWith('.localhost');
  };
}
