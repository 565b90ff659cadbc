import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_RETENTION, parseRetention, type RetentionPolicy } from './store/retention.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface ServerConfig {
  host: string;
  tcpPort: number;
  httpPort: number;
  udpPort: number;
  tlsTcpPort: number;
  httpsPort: number;
  dataDir: string;
  tls: boolean;
  history: number;
  origins: string[];
  redis: string | undefined;
  logLevel: LogLevel;
  /** Messages per second per connection, and the burst a token bucket allows. */
  rate: number;
  burst: number;
  maxMessageLength: number;
  /** File store: messages kept per room and/or days (older segments are deleted). */
  retention: RetentionPolicy;
  shutdownDeadlineMs: number;
  /** Extra names accepted in the Host header (besides localhost names and bound addresses). */
  hostNames: string[];
  /** Open connections per client address on each listener (TCP, TLS, HTTP, HTTPS) and WebSockets. */
  maxConnsPerAddress: number;
  /** Open WebSockets in all (ws and wss together). */
  maxWebSockets: number;
  maxRooms: number;
  /** Seconds an empty room stays in memory without activity. */
  roomIdleSeconds: number;
  /** Only TLS listeners; plain HTTP only redirects to HTTPS, no plain TCP. Implies `tls`. */
  tlsOnly: boolean;
  /** Guests: `on` (prefixed `guest-`), `off` (login required) or `open` (free names, as before accounts). */
  guests: 'on' | 'off' | 'open';
  /** Lifetime of a login session and its tokens, seconds. */
  sessionTtlSeconds: number;
  /** Operator token for POST /api/admin/revoke; unset disables the endpoint. */
  adminToken: string | undefined;
  /** Room list and public room history over HTTP without a token. */
  publicReads: boolean;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CHAT_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Every option: its flag, its environment variable, and its default. README's table mirrors this. */
export const OPTION_DOCS: [flag: string, env: string, def: string, what: string][] = [
  ['--host', 'CHAT_HOST', '0.0.0.0', 'address every listener binds'],
  ['--tcp-port', 'CHAT_TCP_PORT', '8124', 'TCP line protocol (netcat)'],
  ['--http-port', 'CHAT_HTTP_PORT', '8080', 'HTTP: web page, /ws, /api, /healthz, /metrics'],
  ['--udp-port', 'CHAT_UDP_PORT', '41234', 'UDP discovery'],
  ['--tls-tcp-port', 'CHAT_TLS_TCP_PORT', '8125', 'TCP line protocol over TLS (with --tls)'],
  ['--https-port', 'CHAT_HTTPS_PORT', '8443', 'HTTPS + WSS (with --tls)'],
  ['--data-dir', 'CHAT_DATA_DIR', './.chat-data', 'message log and dev CA'],
  ['--tls', 'CHAT_TLS', 'off', 'also listen with TLS, certificates from a dev CA in the data dir'],
  ['--history', 'CHAT_HISTORY', '50', 'messages replayed on join'],
  [
    '--retention',
    'CHAT_RETENTION',
    '10000',
    'file store keeps N messages per room and/or Nd days, e.g. 10000,30d',
  ],
  [
    '--origin',
    'CHAT_ORIGIN',
    'same origin',
    'extra allowed Origin for /ws (repeatable; comma-separated in env)',
  ],
  ['--redis', 'CHAT_REDIS_URL', 'unset', 'redis://host:port, shared by several nodes'],
  ['--log-level', 'CHAT_LOG_LEVEL', 'info', 'error, warn, info or debug'],
  ['--rate', 'CHAT_RATE', '5', 'messages per second per connection (token bucket refill)'],
  ['--burst', 'CHAT_BURST', '10', 'token bucket size per connection'],
  ['--max-message-length', 'CHAT_MAX_MESSAGE_LENGTH', '2000', 'longest message in characters'],
  [
    '--host-name',
    'CHAT_HOST_NAME',
    'localhost names, host name, bound addresses',
    'extra name accepted in the Host header (repeatable; comma-separated)',
  ],
  [
    '--max-conns-per-address',
    'CHAT_MAX_CONNS_PER_ADDRESS',
    '32',
    'open connections per client address and listener (IPv6: per /64)',
  ],
  ['--max-ws', 'CHAT_MAX_WS', '10000', 'open WebSockets in all'],
  ['--max-rooms', 'CHAT_MAX_ROOMS', '1000', 'rooms held; creating one more is refused (ROOM_LIMIT)'],
  ['--room-idle', 'CHAT_ROOM_IDLE', '600', 'seconds an empty room stays in memory'],
  ['--tls-only', 'CHAT_TLS_ONLY', 'off', 'TLS listeners only (implies --tls); plain HTTP redirects'],
  ['--guests', 'CHAT_GUESTS', 'on', 'on (guest- names), off (login required), open (any unregistered name)'],
  ['--session-ttl', 'CHAT_SESSION_TTL', '43200', 'seconds a login session (and its tokens) lives'],
  ['--admin-token', 'CHAT_ADMIN_TOKEN', 'unset', 'operator token for POST /api/admin/revoke (16+ chars)'],
  ['--public-reads', 'CHAT_PUBLIC_READS', 'on', 'room list and history over HTTP without a token (on/off)'],
];

const HELP = `net-chat: one chat over TCP, TLS, HTTP, WebSocket and UDP discovery

Usage: net-chat [options]     (every option also reads the environment variable shown)

${OPTION_DOCS.map(([f, e, d, w]) => `  ${f.padEnd(22)} ${e.padEnd(24)} ${w} (default ${d})`).join('\n')}
  --help                                          this text

A port of 0 picks a free port; every listener prints its address.`;

export function helpText(): string {
  return HELP;
}

function port(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`${name}: "${value}" is not a port (0-65535)`);
  return n;
}

function positive(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(`${name}: "${value}" must be a number >= ${min}`);
  return n;
}

function bool(value: string | boolean | undefined): boolean {
  if (typeof value === 'boolean') return value;
  return value !== undefined && /^(1|true|yes|on)$/i.test(value);
}

/** Flags win over environment variables, which win over defaults. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        'tcp-port': { type: 'string' },
        'http-port': { type: 'string' },
        'udp-port': { type: 'string' },
        'tls-tcp-port': { type: 'string' },
        'https-port': { type: 'string' },
        'data-dir': { type: 'string' },
        tls: { type: 'boolean' },
        history: { type: 'string' },
        retention: { type: 'string' },
        origin: { type: 'string', multiple: true },
        redis: { type: 'string' },
        'log-level': { type: 'string' },
        rate: { type: 'string' },
        burst: { type: 'string' },
        'max-message-length': { type: 'string' },
        'host-name': { type: 'string', multiple: true },
        'max-conns-per-address': { type: 'string' },
        'max-ws': { type: 'string' },
        'max-rooms': { type: 'string' },
        'room-idle': { type: 'string' },
        'tls-only': { type: 'boolean' },
        guests: { type: 'string' },
        'session-ttl': { type: 'string' },
        'admin-token': { type: 'string' },
        'public-reads': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (v.help) return 'help';
  const s = (flag: string, envName: string): string | undefined =>
    (v[flag] as string | undefined) ?? env[envName];
  const logLevel = (s('log-level', 'CHAT_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) {
    throw new ConfigError(`--log-level: "${logLevel}" is not one of error, warn, info, debug`);
  }
  const origins = (v.origin as string[] | undefined) ?? (env.CHAT_ORIGIN ? env.CHAT_ORIGIN.split(',') : []);
  for (const o of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(o))
      throw new ConfigError(`--origin: "${o}" must look like https://host[:port]`);
  }
  const retentionSpec = s('retention', 'CHAT_RETENTION');
  const retention = retentionSpec === undefined ? DEFAULT_RETENTION : parseRetention(retentionSpec);
  if (typeof retention === 'string') throw new ConfigError(`--retention: ${retention}`);
  const hostNames = (
    (v['host-name'] as string[] | undefined) ?? (env.CHAT_HOST_NAME ? [env.CHAT_HOST_NAME] : [])
  )
    .flatMap((h) => h.split(','))
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  for (const h of hostNames) {
    if (isIP(h) === 0 && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(h))
      throw new ConfigError(`--host-name: "${h}" is not a host name or address (no port, no scheme)`);
  }
  const tlsOnly = v['tls-only'] === true || bool(env.CHAT_TLS_ONLY);
  const integer = (flag: string, envName: string, fallback: number, min: number): number => {
    const n = positive(`--${flag}`, s(flag, envName), fallback, min);
    if (!Number.isInteger(n)) throw new ConfigError(`--${flag}: "${n}" must be a whole number`);
    return n;
  };
  const guests = s('guests', 'CHAT_GUESTS') ?? 'on';
  if (guests !== 'on' && guests !== 'off' && guests !== 'open') {
    throw new ConfigError(`--guests: "${guests}" is not one of on, off, open`);
  }
  const adminToken = s('admin-token', 'CHAT_ADMIN_TOKEN');
  if (adminToken !== undefined && !/^[A-Za-z0-9_.-]{16,4096}$/.test(adminToken)) {
    throw new ConfigError('--admin-token: at least 16 characters of A-Z a-z 0-9 _ . -');
  }
  const publicReads = s('public-reads', 'CHAT_PUBLIC_READS') ?? 'on';
  if (!/^(on|off)$/.test(publicReads))
    throw new ConfigError(`--public-reads: "${publicReads}" is not on or off`);
  return {
    host: s('host', 'CHAT_HOST') ?? '0.0.0.0',
    tcpPort: port('--tcp-port', s('tcp-port', 'CHAT_TCP_PORT'), 8124),
    httpPort: port('--http-port', s('http-port', 'CHAT_HTTP_PORT'), 8080),
    udpPort: port('--udp-port', s('udp-port', 'CHAT_UDP_PORT'), 41234),
    tlsTcpPort: port('--tls-tcp-port', s('tls-tcp-port', 'CHAT_TLS_TCP_PORT'), 8125),
    httpsPort: port('--https-port', s('https-port', 'CHAT_HTTPS_PORT'), 8443),
    dataDir: s('data-dir', 'CHAT_DATA_DIR') ?? './.chat-data',
    tls: tlsOnly || v.tls === true || bool(env.CHAT_TLS),
    history: positive('--history', s('history', 'CHAT_HISTORY'), 50),
    origins: origins.map((o) => o.toLowerCase()),
    redis: s('redis', 'CHAT_REDIS_URL'),
    logLevel,
    rate: positive('--rate', s('rate', 'CHAT_RATE'), 5, 0.01),
    burst: positive('--burst', s('burst', 'CHAT_BURST'), 10, 1),
    maxMessageLength: positive(
      '--max-message-length',
      s('max-message-length', 'CHAT_MAX_MESSAGE_LENGTH'),
      2000,
      1,
    ),
    retention,
    shutdownDeadlineMs: 5000,
    hostNames,
    maxConnsPerAddress: integer('max-conns-per-address', 'CHAT_MAX_CONNS_PER_ADDRESS', 32, 1),
    maxWebSockets: integer('max-ws', 'CHAT_MAX_WS', 10_000, 1),
    maxRooms: integer('max-rooms', 'CHAT_MAX_ROOMS', 1000, 1),
    roomIdleSeconds: positive('--room-idle', s('room-idle', 'CHAT_ROOM_IDLE'), 600, 1),
    tlsOnly,
    guests,
    sessionTtlSeconds: integer('session-ttl', 'CHAT_SESSION_TTL', 43_200, 1),
    adminToken: adminToken === '' ? undefined : adminToken,
    publicReads: publicReads === 'on',
  };
}
