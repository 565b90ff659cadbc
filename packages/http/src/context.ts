import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Readable } from 'node:stream';
import { ByteLimit } from './byte-limit.js';
import {
  BodyAbortedError,
  BodyConsumedError,
  BodyTooLargeError,
  InvalidJsonError,
  UnsupportedMediaTypeError,
} from './errors.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * What a handler receives. One instance per request, built from a class so the hot path allocates
 * a single small object: the query string, the body and the abort signal are only looked at when
 * asked for.
 */
export class Context<P extends Record<string, string> = Record<string, string>> {
  /** The Node request. Read the body through `json()`/`text()`/`buffer()`/`stream()` so limits apply. */
  readonly req: IncomingMessage;
  /** The Node response, for handlers that write the response themselves (then return `ctx.res`). */
  readonly res: ServerResponse;
  /** Decoded path parameters. */
  readonly params: Readonly<P>;
  /**
   * The path part of the request target in canonical form (see `normalizePath`: the same string the
   * router matched), still percent-encoded, without the query string.
   */
  readonly path: string;
  /** Maximum body size in bytes for this route. */
  readonly bodyLimit: number;
  #queryStart: number;
  #query: Record<string, string | string[]> | undefined = undefined;
  #body: Promise<Buffer> | undefined = undefined;
  #streamed = false;
  #signal: AbortSignal | undefined = undefined;
  #state: Record<string, unknown> | undefined = undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    params: Readonly<P>,
    path: string,
    queryStart: number,
    bodyLimit: number,
  ) {
    this.req = req;
    this.res = res;
    this.params = params;
    this.path = path;
    this.#queryStart = queryStart;
    this.bodyLimit = bodyLimit;
  }

  /** Request method, upper-case. */
  get method(): string {
    return this.req.method!;
  }

  /** The request target (canonical path and the query as received). */
  get url(): string {
    return this.req.url!;
  }

  /** Request headers (lower-case names). */
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  /** The raw query string without `?` (empty when there is none). */
  get search(): string {
    return this.#queryStart === -1 ? '' : this.req.url!.slice(this.#queryStart + 1);
  }

  /** Parsed query string; repeated keys give arrays. Parsed on first access. */
  get query(): Readonly<Record<string, string | string[]>> {
    if (this.#query === undefined) {
      this.#query =
        this.#queryStart === -1
          ? Object.create(null)
          : (parseQuery(this.search, '&', '=', { maxKeys: 1000 }) as Record<string, string | string[]>);
    }
    return this.#query!;
  }

  /** The query as URLSearchParams (a new object on each access). */
  get searchParams(): URLSearchParams {
    return new URLSearchParams(this.search);
  }

  /** Remote address of the client. */
  get ip(): string | undefined {
    return this.req.socket.remoteAddress;
  }

  /** Response status code to use for a returned value (default 200; 204 when nothing is returned). */
  get status(): number {
    return this.res.statusCode;
  }

  set status(code: number) {
    this.res.statusCode = code;
  }

  /** Sets a response header; returns the context for chaining. */
  header(name: string, value: string | number | readonly string[]): this {
    this.res.setHeader(name, value);
    return this;
  }

  /** Per-request scratch space, e.g. for `onRequest` to hand the authenticated user to the handler. */
  get state(): Record<string, unknown> {
    this.#state ??= {};
    return this.#state;
  }

  /** Aborted when the client goes away before the response has been sent. */
  get signal(): AbortSignal {
    if (this.#signal === undefined) {
      const controller = new AbortController();
      this.#signal = controller.signal;
      const res = this.res;
      res.once('close', () => {
        if (!res.writableFinished) controller.abort(new BodyAbortedError());
      });
    }
    return this.#signal;
  }

  /** The whole body, at most `bodyLimit` bytes (413 beyond). Cached: safe to call again. */
  buffer(): Promise<Buffer> {
    if (this.#body === undefined) {
      this.#body = this.#streamed
        ? Promise.reject(new BodyConsumedError())
        : readBody(this.req, this.bodyLimit);
    }
    return this.#body;
  }

  /** The body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await this.buffer()).toString('utf8');
  }

  /**
   * The body parsed as JSON. 415 when a Content-Type other than JSON was sent, 400 when the body
   * does not parse. The result is untrusted input: validate it.
   */
  async json<T = unknown>(): Promise<T> {
    const type = this.req.headers['content-type'];
    if (type !== undefined && !JSON_TYPE.test(type)) throw new UnsupportedMediaTypeError(type);
    const body = await this.buffer();
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch (err) {
      throw new InvalidJsonError(err);
    }
  }

  /**
   * The body as a stream that errors with `BodyTooLargeError` once `bodyLimit` is crossed.
   * Throws right away when the announced Content-Length is already too large.
   */
  stream(): Readable {
    if (this.#streamed || this.#body !== undefined) throw new BodyConsumedError();
    this.#streamed = true;
    const limit = this.bodyLimit;
    if (announcedLength(this.req) > limit) throw new BodyTooLargeError(limit);
    const req = this.req;
    const limiter = new ByteLimit(limit, () => new BodyTooLargeError(limit));
    // Not pipeline(): destroying the request would destroy the socket before the 413 goes out.
    req.on('error', (err) => limiter.destroy(new BodyAbortedError(err)));
    req.on('close', () => {
      if (!req.complete) limiter.destroy(new BodyAbortedError());
    });
    limiter.on('error', () => {
      req.unpipe(limiter);
      req.resume(); // drop the rest; the error response closes the connection
    });
    req.pipe(limiter);
    return limiter;
  }
}

/** Content-Length as a number, or -1 when absent. */
export function announcedLength(req: IncomingMessage): number {
  const value = req.headers['content-length'];
  return value === undefined ? -1 : Number(value);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (announcedLength(req) > limit) {
      reject(new BodyTooLargeError(limit));
      return;
    }
    if (req.complete && req.readableEnded) {
      resolve(Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Keep draining (and dropping) so the 413 can be written; the connection is closed after it.
        req.resume();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new BodyAbortedError(err));
    };
    const onClose = (): void => {
      cleanup();
      reject(new BodyAbortedError());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
