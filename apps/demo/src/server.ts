import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createHttpServer, type Server as HttpServer, reply } from '@net/http';
import { generateSecret, RateLimiter, serverOptions, spkiPin } from '@net/security';
import { ChatCore } from './chat/index.js';
import { ConfigError, helpText, parseConfig, type ServerConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { DEFAULT_ROOM } from './protocol/frames.js';
import { type ChatStore, FileStore } from './store/index.js';
import { RedisStore } from './store/redis-store.js';
import { AddressCaps } from './transports/address-caps.js';
import { allowedHostNames, hostCheck } from './transports/host-check.js';
import { httpGuard } from './transports/http-guard.js';
import { mountHttpsRedirect } from './transports/https-redirect.js';
import { createLineServer, type LineServer } from './transports/tcp-lines.js';
import { openChatCA } from './tls-setup.js';
import { createTokenIssuer } from './transports/tokens.js';
import { mountHttpApi } from './transports/http-api.js';
import { type Discovery, startDiscovery } from './transports/udp-discovery.js';
import { mountWebSocket, peerOf, type WsEndpoint } from './transports/ws.js';

const here = dirname(fileURLToPath(import.meta.url));
const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(join(here, '../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
const SERVER_NAME = `net-chat/${VERSION}`;

function url(scheme: string, address: string, port: number): string {
  return `${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** A client-chosen string for a log line: one line, bounded, visible ASCII only. */
function printable(text: string): string {
  return text.slice(0, 200).replace(/[^\x21-\x7e]/g, '?');
}

/** Addresses go to stdout, one per line, so scripts and tests can parse them. */
function announceLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

interface Running {
  close(): Promise<void>;
}

async function start(config: ServerConfig, log: Logger): Promise<Running> {
  const metrics = new Metrics();
  // --redis: shared store for several nodes; otherwise the single-node file store.
  const store: ChatStore = config.redis
    ? new RedisStore({ url: config.redis, defaultRoom: DEFAULT_ROOM, onWarning: (w) => log.warn(w) })
    : new FileStore({
        dataDir: config.dataDir,
        retention: config.retention,
        defaultRoom: DEFAULT_ROOM,
        onWarning: (w) => log.warn(w),
      });
  await store.open();
  if (store instanceof RedisStore) announceLine(`store redis ${store.url} node ${store.node}`);
  const limiter = new RateLimiter({ capacity: config.burst, refillPerSecond: config.rate, maxKeys: 100_000 });
  let limiterKey = 0;
  // Store failures reach clients as a generic STORE_FAILED; the detail is logged here, at most one
  // line a second so an outage does not flood the log.
  let storeErrorsLogged = 0;
  let storeErrorsSuppressed = 0;
  const onStoreError = (what: string, err: unknown) => {
    const now = Date.now();
    if (now - storeErrorsLogged < 1000) {
      storeErrorsSuppressed++;
      return;
    }
    const more = storeErrorsSuppressed > 0 ? ` (+${storeErrorsSuppressed} more since the last line)` : '';
    storeErrorsLogged = now;
    storeErrorsSuppressed = 0;
    log.warn(`store error during ${what}: ${(err as Error)?.message ?? String(err)}${more}`);
  };
  // Several nodes must accept each other's tokens: with Redis they share one signing secret.
  const tokens = createTokenIssuer(
    store instanceof RedisStore ? await store.sharedSecret('token-hmac', generateSecret) : undefined,
  );
  const core = new ChatCore(store, {
    defaultRoom: DEFAULT_ROOM,
    identity: {
      guests: config.guests,
      sessionTtlMs: config.sessionTtlSeconds * 1000,
      tokens: { sign: tokens.sign!, open: tokens.open! },
    },
    onStoreError,
    historyOnJoin: config.history,
    maxMessageLength: config.maxMessageLength,
    maxRooms: config.maxRooms,
    roomIdleMs: config.roomIdleSeconds * 1000,
    metrics,
    rateLimiter: () => {
      // One bucket per connection, keyed in the shared (bounded) @net/security limiter.
      const key = String(++limiterKey);
      return {
        tryTake: () => limiter.take(key),
        retryAfterMs: () => limiter.retryAfterMs(key),
        release: () => void limiter.delete(key),
      };
    },
  });
  const publicDir = join(here, 'public');
  // The repository's API reference, when `pnpm docs` has built it (a packaged demo has none).
  const docsDir = process.env.CHAT_DOCS_DIR ?? join(here, '..', '..', '..', 'docs', 'api');
  const closers: (() => Promise<void>)[] = [];
  const lineServers: LineServer[] = [];
  const wsEndpoints: WsEndpoint[] = [];
  const httpServers: HttpServer[] = [];
  const endpoints: { tcp?: number; http?: number; tls?: number; https?: number; caPin?: string } = {};
  let caPem: string | undefined;
  const hostNames = allowedHostNames(config.host, config.hostNames);
  const allowHost = hostCheck(hostNames);
  const webSockets = new AddressCaps(config.maxConnsPerAddress, config.maxWebSockets);

  const makeHttp = async (transport: 'http' | 'https', port: number, tls?: object) => {
    const guard = httpGuard({
      sockets: new AddressCaps(config.maxConnsPerAddress),
      webSockets,
      allowHost,
      metrics,
      transport,
      ...(config.tlsOnly && transport === 'https' ? { hsts: 'max-age=86400' } : {}),
    });
    // HTTPS speaks HTTP/2 by ALPN (HTTP/1.1 still on the same port): a browser's page, API calls
    // and /ws (RFC 8441) then share one TLS connection.
    const debug = config.logLevel === 'debug';
    const http = createHttpServer({
      ...(tls ? { tls, http2: true } : {}),
      bodyLimit: 64 * 1024,
      onRequest: (ctx) => {
        if (debug)
          log.debug(
            `${transport}: ${ctx.method} ${printable(ctx.path)} HTTP/${ctx.req.httpVersion} from ${peerOf(ctx.req)}`,
          );
        return guard.onRequest(ctx);
      },
    });
    guard.attach(http);
    wsEndpoints.push(
      mountWebSocket(http, {
        core,
        metrics,
        log,
        tokens,
        serverName: SERVER_NAME,
        transport: transport === 'https' ? 'wss' : 'ws',
        origins: config.origins,
        rate: config.rate,
        burst: config.burst,
        admit: guard.admitUpgrade,
      }),
    );
    if (caPem !== undefined) {
      const pem = caPem;
      http.get('/ca.pem', () => reply(200, pem, { 'content-type': 'application/x-pem-file' }));
    }
    mountHttpApi(http, {
      core,
      metrics,
      tokens,
      publicDir,
      docsDir,
      transport,
      access: {
        publicReads: config.publicReads,
        ...(config.adminToken ? { adminToken: config.adminToken } : {}),
      },
    });
    http.on('requestError', (err) => log.warn(`${transport}: ${(err as Error).message}`));
    const addr = await http.listen(port, config.host);
    httpServers.push(http);
    announceLine(`listening ${transport} ${url(transport, config.host, addr.port)}`);
    return addr.port;
  };

  try {
    let tls: ReturnType<typeof serverOptions> | undefined;
    if (config.tls) {
      const ca = await openChatCA(resolve(config.dataDir, 'ca'), config.host, config.hostNames, log);
      tls = serverOptions({ cert: ca.cert, key: ca.key });
      caPem = ca.caCert;
      endpoints.caPin = spkiPin(ca.caCert);
      announceLine(`dev CA ${ca.caCertPath} pin ${endpoints.caPin}`);
    }

    // --tls-only: no plain TCP at all, plain HTTP only as a redirect (started after HTTPS).
    if (!config.tlsOnly) {
      const tcp = createLineServer({
        core,
        metrics,
        log,
        serverName: SERVER_NAME,
        transport: 'tcp',
        tokens,
        caps: new AddressCaps(config.maxConnsPerAddress),
      });
      const tcpAddr = await tcp.server.listen({ port: config.tcpPort, host: config.host });
      lineServers.push(tcp);
      endpoints.tcp = tcpAddr.port;
      announceLine(`listening tcp ${url('tcp', config.host, tcpAddr.port)}`);

      endpoints.http = await makeHttp('http', config.httpPort);
    }

    if (tls) {
      const tlsLines = createLineServer({
        core,
        metrics,
        log,
        serverName: SERVER_NAME,
        transport: 'tls',
        tls,
        tokens,
        caps: new AddressCaps(config.maxConnsPerAddress),
      });
      const tlsAddr = await tlsLines.server.listen({ port: config.tlsTcpPort, host: config.host });
      lineServers.push(tlsLines);
      endpoints.tls = tlsAddr.port;
      announceLine(`listening tls ${url('tls', config.host, tlsAddr.port)}`);
      endpoints.https = await makeHttp('https', config.httpsPort, tls);
    }

    if (config.tlsOnly && endpoints.https !== undefined) {
      const redirect = mountHttpsRedirect(endpoints.https, allowHost);
      const addr = await redirect.listen(config.httpPort, config.host);
      httpServers.push(redirect);
      announceLine(`redirecting http ${url('http', config.host, addr.port)}`);
    }
    try {
      // DNS-SD: `_net-chat._tcp` over mDNS, and unicast DNS-SD queries on --udp-port.
      const discovery: Discovery = await startDiscovery(config.host, config.udpPort, {
        name: SERVER_NAME,
        ...endpoints,
      });
      if (!discovery.multicast)
        log.warn('mdns: port 5353 is not shareable here; only unicast DNS-SD answers');
      announceLine(`listening udp ${url('udp', config.host, discovery.unicastPort)}`);
      closers.push(() => discovery.close());
    } catch (err) {
      // Discovery is a convenience: the chat works without it (e.g. the port is taken).
      log.warn(`udp discovery disabled: ${(err as Error).message}`);
    }
  } catch (err) {
    for (const s of lineServers) await s.server.close({ deadline: 0 }).catch(() => {});
    for (const h of httpServers) await h.close({ deadline: 0 }).catch(() => {});
    await store.close();
    throw err;
  }

  log.info(`${SERVER_NAME} listening, data in ${resolve(config.dataDir)}`);
  // The one line a new user needs: where to point the browser.
  const pagePort = config.tlsOnly ? endpoints.https : (endpoints.http ?? endpoints.https);
  if (pagePort !== undefined) {
    const scheme = pagePort === endpoints.http ? 'http' : 'https';
    const wildcard = config.host === '0.0.0.0' || config.host === '::';
    log.info(`open ${url(scheme, wildcard ? 'localhost' : config.host, pagePort)}/ in a browser`);
  }

  return {
    async close() {
      const deadline = config.shutdownDeadlineMs;
      // Order: stop discovery, say goodbye on every transport and stop accepting, then leave
      // rooms and flush the log.
      await Promise.allSettled(closers.map((c) => c()));
      await Promise.allSettled([
        ...lineServers.map((s) => s.shutdown(Math.min(2000, deadline / 2))),
        ...wsEndpoints.map((w) => w.shutdown()),
        ...httpServers.map((h) => h.close({ deadline: Math.min(2000, deadline / 2) })),
      ]);
      await core.shutdown();
      await store.close();
    },
  };
}

/** `pnpm demo -- --flag` forwards the `--` itself; parseArgs would take everything after it as positionals. */
function stripSeparator(argv: string[]): string[] {
  return argv[0] === '--' ? argv.slice(1) : argv;
}

async function main(): Promise<void> {
  let config: ServerConfig | 'help';
  try {
    config = parseConfig(stripSeparator(process.argv.slice(2)), process.env);
  } catch (err) {
    process.stderr.write(`net-chat: ${(err as Error).message}\n\n${helpText()}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  if (config === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const log = createLogger(config.logLevel);
  const running = await start(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down`);
    const timer = setTimeout(() => {
      log.error(`shutdown took longer than ${config.shutdownDeadlineMs} ms, exiting`);
      process.exit(1);
    }, config.shutdownDeadlineMs + 1000);
    timer.unref();
    running.close().then(
      () => {
        log.info('bye');
        process.exit(0);
      },
      (err: Error) => {
        log.error(`shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Only now: whoever waits for "ready" may signal us and get a graceful shutdown.
  announceLine('ready');
}

main().catch((err: Error) => {
  process.stderr.write(`net-chat: ${err.message}\n`);
  process.exit(1);
});
