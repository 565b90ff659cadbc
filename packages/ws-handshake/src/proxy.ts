import net from 'node:net';
import { InvalidArgumentError, ProxyError } from './errors.js';
import { ConnectResponseParser } from './proxy-response.js';

/** The `proxy` client option: a proxy URL, `'env'` for the environment variables, or none. */
export type ProxyOption = string | URL | false | undefined;

function envVar(name: string): string | undefined {
  const value = process.env[name.toLowerCase()] ?? process.env[name.toUpperCase()];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** `NO_PROXY`: comma/space separated hosts or domain suffixes (`.example.com`, `example.com`), optional `:port`, or `*`. */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (noProxy === undefined) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port === '' ? (target.protocol === 'wss:' ? '443' : '80') : target.port;
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const portMatch = /^(.*?):(\d+)$/.exec(entry);
    if (portMatch !== null && !entry.endsWith(']') && (entry.match(/:/g) ?? []).length === 1) {
      entry = portMatch[1]!;
      entryPort = portMatch[2];
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/**
 * The proxy to use for `target`, or null for a direct connection. `'env'` reads `HTTPS_PROXY`
 * (for `wss:`) or `HTTP_PROXY` (for `ws:`), lower case first, and honours `NO_PROXY`.
 */
export function resolveProxy(option: ProxyOption, target: URL): URL | null {
  if (option === undefined || option === false) return null;
  let value: string | URL;
  if (option === 'env') {
    const fromEnv = envVar(target.protocol === 'wss:' ? 'https_proxy' : 'http_proxy');
    if (fromEnv === undefined || bypassesProxy(target, envVar('no_proxy'))) return null;
    value = fromEnv;
  } else {
    value = option;
  }
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new InvalidArgumentError(`Invalid proxy URL: ${String(value)}`);
  }
  if (url.protocol !== 'http:') {
    throw new InvalidArgumentError(
      `Only http: proxies are supported (CONNECT over TCP), got ${url.protocol}`,
    );
  }
  return url;
}

function ignoreError(): void {}

function authorityOf(host: string, port: number): string {
  return `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/**
 * Open a TCP connection to `proxy` and ask it to CONNECT to `host:port`. Calls back with the
 * tunnel (a plain socket carrying the origin's bytes) or a `ProxyError`. Returns the proxy socket
 * at once so the caller can destroy it on timeout or abort.
 */
export function openTunnel(
  proxy: URL,
  host: string,
  port: number,
  callback: (error: ProxyError | null, socket?: net.Socket) => void,
): net.Socket {
  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = proxy.port === '' ? 80 : Number(proxy.port);
  const socket = net.connect({ host: proxyHost, port: proxyPort });
  const parser = new ConnectResponseParser();
  let done = false;
  const finish = (error: ProxyError | null): void => {
    if (done) return;
    done = true;
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
    if (error !== null) {
      socket.destroy();
      callback(error);
    } else {
      // The HTTP client attaches its own error listener a tick later; until then an error must
      // not go unhandled (the close that follows reaches the client as a hang-up).
      socket.on('error', ignoreError);
      callback(null, socket);
    }
  };
  const onData = (chunk: Buffer): void => {
    let response: ReturnType<ConnectResponseParser['push']>;
    try {
      response = parser.push(chunk);
    } catch (error) {
      finish(error as ProxyError);
      return;
    }
    if (response === null) return;
    if (response.status < 200 || response.status > 299) {
      finish(
        new ProxyError(
          `Proxy refused CONNECT to ${authorityOf(host, port)}: ${response.status} ${response.reason}`.trim(),
          response.status,
        ),
      );
      return;
    }
    // A WebSocket server speaks only after our request, so bytes already here did not come from it.
    if (response.rest.length > 0) {
      finish(new ProxyError('Proxy sent data after its CONNECT response before the tunnel was used'));
      return;
    }
    finish(null);
  };
  const onError = (error: Error): void => {
    finish(new ProxyError(`Cannot reach proxy ${proxy.host}: ${error.message}`, undefined, error));
  };
  const onClose = (): void => {
    finish(new ProxyError(`Proxy ${proxy.host} closed the connection before answering CONNECT`));
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
  const authority = authorityOf(host, port);
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (proxy.username !== '' || proxy.password !== '') {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    head += `Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
  }
  socket.write(`${head}\r\n`);
  return socket;
}
