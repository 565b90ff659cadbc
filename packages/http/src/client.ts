import * as http from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { ByteLimit } from './byte-limit.js';
import {
  ClientError,
  ConnectionError,
  InvalidOptionError,
  RequestAbortedError,
  RequestTimeoutError,
  ResponseConsumedError,
  ResponseJsonError,
  ResponseTooLargeError,
  TooManyRedirectsError,
} from './errors.js';
import { h2Request, sessionFor } from './h2-client.js';
import { CLIENT_DEFAULTS, checkInt, type RequestOptions } from './options.js';

/** Shared keep-alive agents; idle sockets are unref'd by Node so they never hold the process open. */
export const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' });
/** The shared keep-alive agent `request()` uses for `https:` URLs ({@link httpAgent} for `http:`). */
export const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' });

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const RETRY_STATUS = new Set([502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_RETRY_AFTER_MS = 10_000;

function noop(): void {}

/** A response whose headers have arrived; read the body once with one of the methods. */
export class ClientResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Final URL, after redirects. */
  readonly url: string;
  /** Whether at least one redirect was followed. */
  readonly redirected: boolean;
  readonly #message: http.IncomingMessage;
  readonly #limit: number;
  readonly #settle: () => void;
  #consumed = false;

  constructor(
    message: http.IncomingMessage,
    url: string,
    redirected: boolean,
    limit: number,
    settle: () => void,
  ) {
    this.#message = message;
    this.status = message.statusCode ?? 0;
    this.statusText = message.statusMessage ?? '';
    this.headers = message.headers;
    this.url = url;
    this.redirected = redirected;
    this.#limit = limit;
    this.#settle = settle;
    // A timeout or abort may destroy an unread body; that must not become an uncaught 'error'.
    message.on('error', noop);
  }

  /** True for 2xx statuses. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  #take(): http.IncomingMessage {
    if (this.#consumed) throw new ResponseConsumedError();
    this.#consumed = true;
    return this.#message;
  }

  /** The whole body, at most `maxBodySize` bytes. */
  body(): Promise<Buffer> {
    let message: http.IncomingMessage;
    try {
      message = this.#take();
    } catch (err) {
      return Promise.reject(err);
    }
    const limit = this.#limit;
    const settle = this.#settle;
    return new Promise((resolve, reject) => {
      const announced = Number(message.headers['content-length'] ?? -1);
      if (announced > limit) {
        message.destroy();
        settle();
        reject(new ResponseTooLargeError(limit));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      message.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          message.destroy(new ResponseTooLargeError(limit));
          return;
        }
        chunks.push(chunk);
      });
      message.once('end', () => {
        settle();
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      });
      message.once('error', (err) => {
        settle();
        reject(asClientError(err));
      });
      message.once('close', () => {
        if (!message.complete) {
          settle();
          reject(new ConnectionError(new Error('Response ended before its body completed')));
        }
      });
    });
  }

  /** The body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await this.body()).toString('utf8');
  }

  /** The body parsed as JSON. Rejects with `ResponseJsonError` when it does not parse. */
  async json<T = unknown>(): Promise<T> {
    const text = await this.text();
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new ResponseJsonError(err);
    }
  }

  /** The body as a stream, erroring with `ResponseTooLargeError` past `maxBodySize`. */
  stream(): Readable {
    const message = this.#take();
    const limiter = new ByteLimit(this.#limit, () => new ResponseTooLargeError(this.#limit));
    const settle = this.#settle;
    message.on('error', (err) => limiter.destroy(asClientError(err)));
    message.once('close', () => {
      if (!message.complete)
        limiter.destroy(new ConnectionError(new Error('Response ended before its body completed')));
    });
    limiter.once('close', settle);
    limiter.once('error', () => message.destroy());
    message.pipe(limiter);
    return limiter;
  }

  /** Discards the body so the connection can be reused. */
  async dump(): Promise<void> {
    if (this.#consumed) return;
    this.#consumed = true;
    const message = this.#message;
    await new Promise<void>((resolve) => {
      if (message.complete && message.readableEnded) return resolve();
      message.once('end', resolve);
      message.once('close', resolve);
      message.once('error', () => resolve());
      message.resume();
    });
    this.#settle();
  }
}

function asClientError(err: unknown): ClientError {
  return err instanceof ClientError ? err : new ConnectionError(err);
}

interface Attempt {
  url: URL;
  method: string;
  headers: Record<string, string | number | readonly string[]>;
  body: Uint8Array | Readable | undefined;
  redirected: boolean;
}

/**
 * Sends an HTTP(S) request over a keep-alive agent and resolves once the response headers arrive.
 * Retries connection failures and 502/503/504 for idempotent methods with replayable bodies;
 * follows up to `maxRedirects` redirects. Rejects with a `ClientError` subclass; never with a
 * non-2xx status (check `response.ok`).
 */
export async function request(url: string | URL, options: RequestOptions = {}): Promise<ClientResponse> {
  checkInt('timeout', options.timeout, 1);
  checkInt('retries', options.retries, 0, 100);
  checkInt('retryDelay', options.retryDelay, 0);
  checkInt('maxRedirects', options.maxRedirects, 0, 100);
  checkInt('maxBodySize', options.maxBodySize, 0);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new InvalidOptionError(`Invalid URL: ${String(url)}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new InvalidOptionError(`Unsupported protocol ${target.protocol}`);
  }
  const headers: Record<string, string | number | readonly string[]> = {};
  if (options.headers)
    for (const key of Object.keys(options.headers)) headers[key.toLowerCase()] = options.headers[key]!;
  let body: Uint8Array | Readable | undefined;
  if (options.json !== undefined) {
    body = Buffer.from(JSON.stringify(options.json));
    headers['content-type'] ??= 'application/json';
  } else if (typeof options.body === 'string') body = Buffer.from(options.body);
  else body = options.body;
  if (body instanceof Uint8Array) headers['content-length'] = body.length;
  const method = (options.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  const signal = options.signal;
  if (signal?.aborted) throw new RequestAbortedError(signal.reason);

  const maxRedirects = options.maxRedirects ?? CLIENT_DEFAULTS.maxRedirects;
  let attempt: Attempt = { url: target, method, headers, body, redirected: false };
  for (let hops = 0; ; hops++) {
    const response = await withRetries(attempt, options);
    const location = response.headers.location;
    if (maxRedirects === 0 || !REDIRECT_STATUS.has(response.status) || location === undefined)
      return response;
    if (hops >= maxRedirects) {
      await response.dump();
      throw new TooManyRedirectsError(maxRedirects);
    }
    let next: URL;
    try {
      next = new URL(location, attempt.url);
    } catch {
      return response;
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') return response;
    const nextHeaders = { ...attempt.headers };
    let nextMethod = attempt.method;
    let nextBody = attempt.body;
    if (
      response.status === 303 ||
      ((response.status === 301 || response.status === 302) && nextMethod === 'POST')
    ) {
      nextMethod = nextMethod === 'HEAD' ? 'HEAD' : 'GET';
      nextBody = undefined;
      delete nextHeaders['content-type'];
      delete nextHeaders['content-length'];
    } else if (nextBody instanceof Readable) {
      return response; // a consumed stream cannot be sent again
    }
    if (next.origin !== attempt.url.origin) {
      // Credentials are for the origin they were given to.
      delete nextHeaders.authorization;
      delete nextHeaders.cookie;
      delete nextHeaders['proxy-authorization'];
    }
    await response.dump();
    attempt = { url: next, method: nextMethod, headers: nextHeaders, body: nextBody, redirected: true };
  }
}

async function withRetries(attempt: Attempt, options: RequestOptions): Promise<ClientResponse> {
  const replayable = IDEMPOTENT.has(attempt.method) && !(attempt.body instanceof Readable);
  const retries = replayable ? (options.retries ?? CLIENT_DEFAULTS.retries) : 0;
  const baseDelay = options.retryDelay ?? CLIENT_DEFAULTS.retryDelay;
  for (let n = 0; ; n++) {
    let response: ClientResponse;
    try {
      response = await once(attempt, options);
    } catch (err) {
      if (n >= retries || err instanceof RequestAbortedError) throw err;
      await sleep(backoff(baseDelay, n), options.signal);
      continue;
    }
    if (n >= retries || !RETRY_STATUS.has(response.status)) return response;
    const after = retryAfter(response.headers['retry-after']);
    if (after !== null && after > MAX_RETRY_AFTER_MS) return response;
    await response.dump();
    await sleep(after ?? backoff(baseDelay, n), options.signal);
  }
}

function backoff(base: number, n: number): number {
  const exp = base * 2 ** n;
  return exp + Math.floor(Math.random() * (exp / 2 + 1));
}

/** Retry-After (seconds or HTTP date) in ms, or null. */
function retryAfter(value: string | undefined): number | null {
  if (value === undefined) return null;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new RequestAbortedError(signal.reason));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new RequestAbortedError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function once(attempt: Attempt, options: RequestOptions): Promise<ClientResponse> {
  const mode = options.http2;
  if ((mode === true || mode === 'auto') && options.agent === undefined)
    return onceH2(attempt, options, mode);
  return onceH1(attempt, options);
}

/** The same attempt as a stream of a shared h2 session; falls back to HTTP/1.1 when ALPN says so. */
async function onceH2(
  attempt: Attempt,
  options: RequestOptions,
  mode: true | 'auto',
): Promise<ClientResponse> {
  const { url, method, headers, body } = attempt;
  const signal = options.signal;
  if (signal?.aborted) throw new RequestAbortedError(signal.reason);
  const timeout = options.timeout ?? CLIENT_DEFAULTS.timeout;
  const limit = options.maxBodySize ?? CLIENT_DEFAULTS.maxBodySize;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let session: Awaited<ReturnType<typeof sessionFor>>;
  try {
    session = await Promise.race([
      sessionFor(url, mode, options.tls),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RequestTimeoutError(timeout)), timeout);
      }),
    ]);
  } catch (err) {
    throw asClientError(err);
  } finally {
    clearTimeout(timer);
  }
  if (session === null) return onceH1(attempt, options);
  const left = Math.max(1, timeout - (Date.now() - started));
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new RequestAbortedError(signal.reason));
    let sent: ReturnType<typeof h2Request>;
    try {
      sent = h2Request(session, url, method, headers, body);
    } catch (err) {
      reject(asClientError(err));
      return;
    }
    const { stream, response } = sent;
    let settled = false;
    const cancel = (err: ClientError): void => {
      stream.destroy(err);
    };
    const deadline = setTimeout(() => cancel(new RequestTimeoutError(timeout)), left);
    const onAbort = (): void => cancel(new RequestAbortedError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
    };
    response.then(
      (message) => resolve(new ClientResponse(message, url.href, attempt.redirected, limit, settle)),
      (err: unknown) => {
        settle();
        reject(asClientError(err));
      },
    );
  });
}

function onceH1(attempt: Attempt, options: RequestOptions): Promise<ClientResponse> {
  const { url, method, headers, body } = attempt;
  const signal = options.signal;
  const timeout = options.timeout ?? CLIENT_DEFAULTS.timeout;
  const limit = options.maxBodySize ?? CLIENT_DEFAULTS.maxBodySize;
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new RequestAbortedError(signal.reason));
    const reqOptions: https.RequestOptions = {
      method,
      headers: headers as http.OutgoingHttpHeaders,
      agent: options.agent ?? (secure ? httpsAgent : httpAgent),
    };
    if (secure && options.tls) Object.assign(reqOptions, options.tls);
    const req = (secure ? https : http).request(url, reqOptions);
    let response: http.IncomingMessage | null = null;
    let settled = false;
    // The deadline and the abort signal cover the body too, until it is read or dumped.
    const cancel = (err: ClientError): void => {
      if (response !== null) response.destroy(err);
      req.destroy(err);
    };
    const timer = setTimeout(() => cancel(new RequestTimeoutError(timeout)), timeout);
    const onAbort = (): void => cancel(new RequestAbortedError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    req.once('response', (message) => {
      response = message;
      resolve(new ClientResponse(message, url.href, attempt.redirected, limit, settle));
    });
    req.on('error', (err) => {
      if (response !== null) return; // reported through the body readers
      settle();
      reject(asClientError(err));
    });
    if (body === undefined) req.end();
    else if (body instanceof Readable) {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    } else req.end(body);
  });
}
