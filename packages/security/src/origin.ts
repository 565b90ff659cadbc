import { InvalidOptionError } from './errors.js';
import type { OriginCheckOptions } from './options.js';

interface Rule {
  scheme: string;
  /** Exact host, or the suffix (with leading dot) for `*.` rules. */
  host: string;
  wildcard: boolean;
  /** Port text as it appears in a serialized origin ('' for the scheme default), or '*' for any. */
  port: string;
}

const MAX_ORIGIN_LENGTH = 2048;

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };
/** What browsers send: lowercase ASCII host, no default port, no leading zeros. */
const CANONICAL = /^(https?|wss?):\/\/([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([1-9][0-9]{0,4}))?$/;

/**
 * Fast path for origins already in canonical form (all browser-sent ones), avoiding a URL parse
 * per request. Anything unusual (IPv6, uppercase, IDN, default port) goes through `parseOrigin`.
 */
function parseCanonical(origin: string): { scheme: string; host: string; port: string } | undefined {
  const m = CANONICAL.exec(origin);
  if (!m) return undefined;
  const port = m[3] ?? '';
  if (port !== '' && (Number(port) > 65535 || DEFAULT_PORTS[m[1]!] === port)) return undefined;
  // Hosts URL would rewrite (numeric IPv4 shorthands such as 0x7f.1) are left to the slow path.
  if (/^[0-9x.]+$/.test(m[2]!) && !/^\d{1,3}(\.\d{1,3}){3}$/.test(m[2]!)) return undefined;
  return { scheme: m[1]!, host: m[2]!, port };
}

/** Serialized origin → parts, or undefined if it is not `scheme://host[:port]` exactly. */
function parseOrigin(origin: string): { scheme: string; host: string; port: string } | undefined {
  if (origin.length > MAX_ORIGIN_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  // An Origin header is exactly scheme://host[:port]: no path, query, fragment or credentials.
  if (url.origin === 'null' || url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== '/' || origin.endsWith('/')) return undefined;
  return { scheme: url.protocol.slice(0, -1), host: url.hostname, port: url.port };
}

function parseRule(entry: string): Rule {
  if (typeof entry !== 'string') throw new InvalidOptionError('origin allowlist entries must be strings');
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\*\.)?([^/:]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}|\*))?$/i.exec(entry);
  if (!m) {
    throw new InvalidOptionError(
      `invalid allowed origin ${JSON.stringify(entry)}: expected scheme://host[:port], https://*.example.com, or 'null'`,
    );
  }
  const wildcard = m[2] !== undefined;
  const portText = m[4];
  // Normalize the literal part (case, IDN to punycode, IPv6, default port) the way browsers serialize.
  const parsed = parseOrigin(`${m[1]}://${m[3]}${portText && portText !== '*' ? `:${portText}` : ''}`);
  if (!parsed || !/^(?:[a-z0-9_-]+\.)*[a-z0-9_-]+$|^\[[0-9a-f:.]+\]$/.test(parsed.host)) {
    throw new InvalidOptionError(`invalid allowed origin ${JSON.stringify(entry)}`);
  }
  if (wildcard && (parsed.host.startsWith('[') || !parsed.host.includes('.'))) {
    throw new InvalidOptionError(
      `wildcard origin ${JSON.stringify(entry)} needs a domain with at least two labels`,
    );
  }
  return {
    scheme: parsed.scheme,
    host: wildcard ? `.${parsed.host}` : parsed.host,
    wildcard,
    port: portText === '*' ? '*' : parsed.port,
  };
}

/** A compiled origin allowlist. Call it with the request's `Origin` header value. */
export type OriginCheck = (origin: string | undefined | null) => boolean;

/**
 * Compiles an allowlist for the `Origin` header of WebSocket upgrades and cross-origin HTTP:
 * - `'https://chat.example.com'` exact origin (scheme, host and port must all match);
 * - `'https://*.example.com'` any subdomain at any depth, not the apex (list it separately);
 * - `'http://localhost:*'` any port;
 * - `'null'` the opaque origin sent by sandboxed iframes and `file:` pages, only when listed.
 * A missing header is refused unless `allowMissing` (browsers always send it on WebSockets).
 */
export function originCheck(allowed: readonly string[], options: OriginCheckOptions = {}): OriginCheck {
  if (!Array.isArray(allowed)) throw new InvalidOptionError('originCheck needs an array of allowed origins');
  const exact = new Set<string>();
  const rules: Rule[] = [];
  let allowNull = false;
  for (const entry of allowed) {
    if (entry === 'null') {
      allowNull = true;
      continue;
    }
    const rule = parseRule(entry);
    if (!rule.wildcard && rule.port !== '*')
      exact.add(`${rule.scheme}://${rule.host}${rule.port ? `:${rule.port}` : ''}`);
    else rules.push(rule);
  }
  const allowMissing = options.allowMissing === true;
  return (origin) => {
    if (origin === undefined || origin === null || origin === '') return allowMissing;
    if (typeof origin !== 'string') return false;
    if (origin === 'null') return allowNull;
    if (exact.has(origin)) return true;
    const parsed = parseCanonical(origin) ?? parseOrigin(origin);
    if (!parsed) return false;
    if (exact.has(`${parsed.scheme}://${parsed.host}${parsed.port ? `:${parsed.port}` : ''}`)) return true;
    for (const rule of rules) {
      if (rule.scheme !== parsed.scheme) continue;
      if (rule.port !== '*' && rule.port !== parsed.port) continue;
      if (
        rule.wildcard
          ? parsed.host.length > rule.host.length && parsed.host.endsWith(rule.host)
          : parsed.host === rule.host
      ) {
        return true;
      }
    }
    return false;
  };
}
