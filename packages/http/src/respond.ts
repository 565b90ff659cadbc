import type { ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BodyAbortedError, BodyTooLargeError, HttpError, STATUS_TEXT } from './errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BINARY_TYPE = 'application/octet-stream';
const BODY_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-range',
  'content-disposition',
  'etag',
  'last-modified',
  'transfer-encoding',
];

/** A handler return value carrying a status and headers along with the body. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers?: Readonly<Record<string, string | number | readonly string[]>>,
  ) {}
}

/** `return reply(201, { id }, { location: '/things/1' })` from a handler. */
export function reply(
  status: number,
  body?: unknown,
  headers?: Readonly<Record<string, string | number | readonly string[]>>,
): Reply {
  return new Reply(status, body, headers);
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === Array.prototype || proto === null;
}

/**
 * Ends with a body and its length. When the handler set no Content-Type, the head goes out through
 * `writeHead` with a flat header list, which skips Node's per-response header map entirely. The
 * explicit length also keeps it on HEAD responses, where Node drops the body.
 */
function endBody(res: ServerResponse, body: string | Uint8Array, type: string): void {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (res.hasHeader('content-type')) {
    res.setHeader('content-length', length);
    res.end(body);
  } else {
    res.writeHead(res.statusCode, ['content-type', type, 'content-length', String(length)]);
    res.end(body);
  }
}

function onPipelineDone(this: ServerResponse, err: Error | null | undefined): void {
  if (err) this.destroy();
}

/**
 * Turns a handler's return value into a response:
 * - `undefined`/`null` → 204 (or the status set on `ctx.status`, with an empty body)
 * - string → text/plain; Buffer/Uint8Array → application/octet-stream
 * - Node Readable or web ReadableStream → streamed (application/octet-stream unless set)
 * - `Reply` → its status and headers, then its body by these same rules
 * - the `ServerResponse` itself, or anything once headers are sent → left alone (the handler owns it)
 * - anything else → JSON; a plain object or array (also as a `Reply` body) through `serialize`
 *   when the route has a response schema
 * A Content-Type already set by the handler wins. Throws when JSON serialisation fails.
 */
export function send(res: ServerResponse, value: unknown, serialize?: (value: unknown) => string): void {
  if (res.headersSent || res.writableEnded || value === res) {
    if (value instanceof Readable && value !== (res as unknown)) value.destroy();
    return;
  }
  switch (typeof value) {
    case 'string':
      endBody(res, value, TEXT_TYPE);
      return;
    case 'undefined':
      if (res.statusCode === 200) res.statusCode = 204;
      res.end();
      return;
    case 'object':
      if (value === null) {
        if (res.statusCode === 200) res.statusCode = 204;
        res.end();
        return;
      }
      // Plain objects and arrays (the common case) go straight to JSON.
      if (isPlain(value)) {
        if (serialize !== undefined) {
          endBody(res, serialize(value), JSON_TYPE);
          return;
        }
      } else {
        if (value instanceof Uint8Array) {
          endBody(res, value, BINARY_TYPE);
          return;
        }
        if (value instanceof Reply) {
          res.statusCode = value.status;
          const headers = value.headers;
          if (headers !== undefined)
            for (const name of Object.keys(headers)) res.setHeader(name, headers[name]!);
          send(res, value.body, serialize);
          return;
        }
        if (value instanceof Readable) {
          if (!res.hasHeader('content-type')) res.setHeader('content-type', BINARY_TYPE);
          pipeline(value, res, onPipelineDone.bind(res));
          return;
        }
        if (value instanceof WebReadableStream) {
          send(res, Readable.fromWeb(value));
          return;
        }
      }
      break;
  }
  const json = JSON.stringify(value);
  if (json === undefined) {
    if (res.statusCode === 200) res.statusCode = 204;
    res.end();
    return;
  }
  endBody(res, json, JSON_TYPE);
}

/** The JSON error body the server sends: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Writes the response for an error that escaped a handler (or the server's own checks). */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // Part of a response is already on the wire; the only honest signal left is to cut it.
    res.destroy();
    return;
  }
  // Headers describing the body the handler meant to send no longer apply; others (CORS, request
  // ids set by a hook) still do.
  for (const name of BODY_HEADERS) res.removeHeader(name);
  let status = 500;
  let code = 'ERR_HTTP_INTERNAL';
  let message = STATUS_TEXT[500]!;
  if (err instanceof HttpError) {
    status = err.status;
    code = err.code;
    message = err.expose ? err.message : (STATUS_TEXT[status] ?? message);
    if (err.headers !== undefined)
      for (const name of Object.keys(err.headers)) res.setHeader(name, err.headers[name]!);
  }
  // The rest of an unread or oversized body may still be in flight; reusing the connection would
  // mean reading all of it first, so close instead.
  if (err instanceof BodyTooLargeError || err instanceof BodyAbortedError)
    res.setHeader('connection', 'close');
  writeStatus(res, status, code, message);
}

/** Writes a complete JSON error response with the given status. */
export function writeStatus(res: ServerResponse, status: number, code: string, message: string): void {
  const body: ErrorBody = { error: { code, message } };
  res.statusCode = status;
  res.setHeader('content-type', JSON_TYPE);
  res.end(JSON.stringify(body));
}

/** A complete minimal response written straight onto a socket (for clientError, upgrade, CONNECT). */
export function rawResponse(status: number, extraHeaders = ''): string {
  const reason = STATUS_TEXT[status] ?? 'Error';
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(reason)}\r\n${extraHeaders}Connection: close\r\n\r\n${reason}`
  );
}
