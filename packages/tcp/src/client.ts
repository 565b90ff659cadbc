import { connect as netConnect, isIP, type Socket } from 'node:net';
import { type ConnectionOptions as TlsConnectionOptions, connect as tlsConnect } from 'node:tls';
import { Connection } from './connection.js';
import { AbortError, ConnectTimeoutError, InvalidOptionError } from './errors.js';
import { type ConnectOptions, checkInt, MAX_TIMER, resolveConnectionOptions } from './options.js';

/**
 * Open a connection (TCP, TLS when `tls` is given, or a Unix socket with `path`). Resolves once
 * the TCP and, for TLS, the TLS handshake (with certificate verification) are complete; rejects
 * with the socket error, `ERR_CONNECT_TIMEOUT` or `ERR_ABORTED`.
 *
 * @example
 * const conn = await connect({ port: 8124, codec: lines() });
 * await conn.send('hello');
 * for await (const line of conn) console.log(line);
 */
export function connect<TDecoded, TEncodable>(
  options: ConnectOptions<TDecoded, TEncodable>,
): Promise<Connection<TDecoded, TEncodable>> {
  let resolved: ReturnType<typeof resolveConnectionOptions>;
  let connectTimeout: number;
  try {
    resolved = resolveConnectionOptions(options, 0);
    connectTimeout = checkInt('connectTimeout', options.connectTimeout ?? 10_000, 1, MAX_TIMER);
    if (options.path === undefined) checkInt('port', options.port, 0, 65_535);
    else if (typeof options.path !== 'string') throw new InvalidOptionError('path', 'expected a string');
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options.signal;
  if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));

  return new Promise((resolve, reject) => {
    const host = options.host ?? 'localhost';
    const endpoint =
      options.path !== undefined
        ? { path: options.path }
        : { host, port: options.port as number, localAddress: options.localAddress, family: options.family };
    let socket: Socket;
    let readyEvent: 'connect' | 'secureConnect';
    if (options.tls !== undefined) {
      const servername =
        options.tls.servername ?? (options.path === undefined && isIP(host) === 0 ? host : undefined);
      // allowHalfOpen is honoured by tls.connect although its option type omits it.
      const tlsOptions: TlsConnectionOptions = { ...options.tls, ...endpoint, servername };
      socket = tlsConnect(Object.assign(tlsOptions, { allowHalfOpen: resolved.allowHalfOpen }));
      readyEvent = 'secureConnect';
    } else {
      socket = netConnect({ ...endpoint, allowHalfOpen: resolved.allowHalfOpen });
      readyEvent = 'connect';
    }

    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off(readyEvent, onReady);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error): void => {
      cleanup();
      socket.on('error', () => {}); // late errors of an abandoned socket are not interesting
      socket.destroy();
      reject(error);
    };
    const onReady = (): void => {
      cleanup();
      resolve(new Connection(socket, options.codec(), resolved));
    };
    const onError = (error: Error): void => fail(error);
    const onAbort = (): void => fail(new AbortError(signal?.reason));
    const timer = setTimeout(() => fail(new ConnectTimeoutError(connectTimeout)), connectTimeout);

    socket.once(readyEvent, onReady);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
