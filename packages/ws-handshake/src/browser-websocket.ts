import { connect } from './client.js';
import { isToken } from './extension.js';
import type { BrowserWebSocketOptions } from './options.js';
import type { MessageData, WebSocket } from './websocket.js';

/** `EventInit` (not in the ES lib this package compiles against). */
interface BaseEventInit {
  bubbles?: boolean;
  cancelable?: boolean;
  composed?: boolean;
}

/** What `binaryType` selects for binary messages. */
export type BinaryType = 'blob' | 'arraybuffer' | 'nodebuffer';

/** Data `send()` accepts, as in the WHATWG interface (plus Node's Buffer, a Uint8Array). */
export type BrowserSendData = string | ArrayBuffer | ArrayBufferView | Blob;

/** Fields of a {@link CloseEvent}: whether the closing handshake completed, the code and the reason. */
export interface CloseEventInit extends BaseEventInit {
  wasClean?: boolean;
  code?: number;
  reason?: string;
}

/** The WHATWG `CloseEvent` (Node 20 has no global one). */
export class CloseEvent extends Event {
  readonly wasClean: boolean;
  readonly code: number;
  readonly reason: string;
  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.wasClean = init.wasClean ?? false;
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
  }
}

/** Fields of an {@link ErrorEvent}: a message and the error that caused it. */
export interface ErrorEventInit extends BaseEventInit {
  message?: string;
  error?: unknown;
}

/**
 * Fired as `error`. Browsers fire a bare `Event`; like Node's built-in `WebSocket`, this one
 * also carries the cause, which a Node program usually wants to log.
 */
export class ErrorEvent extends Event {
  readonly message: string;
  readonly error: unknown;
  constructor(type: string, init: ErrorEventInit = {}) {
    super(type, init);
    this.message = init.message ?? '';
    this.error = init.error;
  }
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** An `on…` property handler of a {@link BrowserWebSocket}; `null` when none is set. */
export type Handler = ((this: BrowserWebSocket, event: Event) => unknown) | null;
type HandlerName = 'open' | 'message' | 'error' | 'close';

function syntaxError(message: string): DOMException {
  return new DOMException(message, 'SyntaxError');
}

/** The WHATWG URL steps of `new WebSocket(url)`: http(s) maps to ws(s), no fragment. */
function parseSocketUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw syntaxError(`Invalid URL: ${String(input)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw syntaxError(`The URL's scheme must be ws, wss, http or https, not ${url.protocol}`);
  }
  if (url.hash !== '' || url.href.endsWith('#')) throw syntaxError('The URL must not contain a fragment');
  return url;
}

function parseProtocols(protocols: string | readonly string[] | undefined): string[] {
  if (protocols === undefined) return [];
  const list = typeof protocols === 'string' ? [protocols] : [...protocols].map(String);
  const seen = new Set<string>();
  for (const p of list) {
    const lower = p.toLowerCase();
    if (!isToken(p) || seen.has(lower)) throw syntaxError(`Invalid or duplicate subprotocol: ${p}`);
    seen.add(lower);
  }
  return list;
}

function byteLength(data: BrowserSendData): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof Blob) return data.size;
  return data.byteLength;
}

/**
 * A `WebSocket` with the browser (WHATWG) interface, for code written against it: graphql-ws,
 * reconnecting wrappers, isomorphic libraries. A thin face over `connect()` and the package's
 * `WebSocket`, so limits, TLS, proxies and timeouts are the same. The third argument takes the
 * `connect()` options; the second may also be an options object with `protocols` (as in Node's
 * built-in `WebSocket`).
 */
export class BrowserWebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;

  readonly #url: URL;
  #readyState = CONNECTING;
  #protocol = '';
  #extensions = '';
  #binaryType: BinaryType = 'blob';
  #socket: WebSocket | null = null;
  /** Bytes passed to `send()` after closing started: never sent, but counted as the spec says. */
  #discarded = 0;
  /** Blobs are read asynchronously; later sends wait behind them to keep message order. */
  #blobChain: Promise<void> | null = null;
  #blobBytes = 0;
  readonly #abort = new AbortController();
  readonly #handlers = new Map<HandlerName, { handler: Handler; listener: (event: Event) => void }>();

  constructor(
    url: string | URL,
    protocols?:
      | string
      | readonly string[]
      | (BrowserWebSocketOptions & { protocols?: string | readonly string[] }),
    options: BrowserWebSocketOptions = {},
  ) {
    super();
    this.#url = parseSocketUrl(url);
    let list: string | readonly string[] | undefined;
    if (
      protocols !== undefined &&
      protocols !== null &&
      typeof protocols === 'object' &&
      !Array.isArray(protocols)
    ) {
      const { protocols: inner, ...rest } = protocols as BrowserWebSocketOptions & {
        protocols?: string | readonly string[];
      };
      list = inner;
      options = { ...rest, ...options };
    } else {
      list = protocols as string | readonly string[] | undefined;
    }
    const offered = parseProtocols(list);
    const outer = options.signal;
    if (outer !== undefined) {
      // One signal for connect(): the caller's, or close() while connecting.
      if (outer.aborted) this.#abort.abort(outer.reason);
      else outer.addEventListener('abort', () => this.#abort.abort(outer.reason), { once: true });
    }
    connect(this.#url, { ...options, protocols: offered, signal: this.#abort.signal }).then(
      (ws) => this.#onOpen(ws),
      (error: unknown) => this.#onFail(error),
    );
  }

  get url(): string {
    return this.#url.href;
  }

  get readyState(): number {
    return this.#readyState;
  }

  get protocol(): string {
    return this.#protocol;
  }

  get extensions(): string {
    return this.#extensions;
  }

  /** Bytes queued by `send()` and not yet handed to the kernel (plus those sent after closing). */
  get bufferedAmount(): number {
    return (this.#socket?.bufferedAmount ?? 0) + this.#blobBytes + this.#discarded;
  }

  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  /** `'blob'` (the default, as in browsers), `'arraybuffer'`, or `'nodebuffer'` (a Buffer, as in `ws`). Other values are ignored. */
  set binaryType(type: BinaryType) {
    if (type === 'blob' || type === 'arraybuffer' || type === 'nodebuffer') this.#binaryType = type;
  }

  get onopen(): Handler {
    return this.#getHandler('open');
  }
  set onopen(handler: Handler) {
    this.#setHandler('open', handler);
  }
  get onmessage(): Handler {
    return this.#getHandler('message');
  }
  set onmessage(handler: Handler) {
    this.#setHandler('message', handler);
  }
  get onerror(): Handler {
    return this.#getHandler('error');
  }
  set onerror(handler: Handler) {
    this.#setHandler('error', handler);
  }
  get onclose(): Handler {
    return this.#getHandler('close');
  }
  set onclose(handler: Handler) {
    this.#setHandler('close', handler);
  }

  /**
   * Queue a message. Throws `InvalidStateError` while connecting; after closing started the
   * data is dropped (and counted in `bufferedAmount`), as the spec says.
   */
  send(data: BrowserSendData): void {
    if (this.#readyState === CONNECTING) {
      throw new DOMException('WebSocket is still connecting', 'InvalidStateError');
    }
    const socket = this.#socket;
    if (this.#readyState !== OPEN || socket === null) {
      this.#discarded += byteLength(data);
      return;
    }
    if (data instanceof Blob || this.#blobChain !== null) {
      this.#sendInOrder(socket, data);
      return;
    }
    socket.send(data as string | ArrayBuffer | ArrayBufferView).catch(() => {});
  }

  /**
   * Start the closing handshake (or abandon a connection still opening). `code` must be 1000 or
   * 3000-4999 (`InvalidAccessError`), `reason` at most 123 UTF-8 bytes (`SyntaxError`). Without a
   * code, 1000 is sent.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined) {
      code = Number(code);
      if (!Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999))) {
        throw new DOMException(`The close code must be 1000 or 3000-4999, got ${code}`, 'InvalidAccessError');
      }
    }
    const text = reason === undefined ? '' : String(reason);
    if (Buffer.byteLength(text) > 123)
      throw syntaxError('The close reason must be at most 123 bytes of UTF-8');
    if (this.#readyState === CLOSING || this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      this.#readyState = CLOSING;
      this.#abort.abort();
      return;
    }
    this.#readyState = CLOSING;
    this.#socket?.close(code ?? 1000, text).catch(() => {});
  }

  #getHandler(type: HandlerName): Handler {
    return this.#handlers.get(type)?.handler ?? null;
  }

  /** Event handler attributes keep the position of their first registration, as in the DOM. */
  #setHandler(type: HandlerName, handler: Handler): void {
    const current = this.#handlers.get(type);
    if (typeof handler !== 'function') {
      if (current !== undefined) {
        this.removeEventListener(type, current.listener);
        this.#handlers.delete(type);
      }
      return;
    }
    if (current !== undefined) {
      current.handler = handler;
      return;
    }
    const entry = {
      handler,
      listener: (event: Event): void => {
        entry.handler?.call(this, event);
      },
    };
    this.#handlers.set(type, entry);
    this.addEventListener(type, entry.listener);
  }

  #sendInOrder(socket: WebSocket, data: BrowserSendData): void {
    const size = byteLength(data);
    this.#blobBytes += size;
    const previous = this.#blobChain ?? Promise.resolve();
    const chain = previous
      .then(async () => {
        try {
          const payload = data instanceof Blob ? await data.arrayBuffer() : data;
          if (socket.readyState === OPEN) socket.send(payload).catch(() => {});
        } finally {
          this.#blobBytes -= size;
        }
      })
      .catch(() => {});
    this.#blobChain = chain;
    void chain.then(() => {
      if (this.#blobChain === chain) this.#blobChain = null;
    });
  }

  #onOpen(ws: WebSocket): void {
    this.#socket = ws;
    this.#protocol = ws.protocol;
    this.#extensions = ws.extensions;
    const origin = this.#url.origin;
    ws.on('message', (data: MessageData, isBinary: boolean) => {
      if (this.#readyState !== OPEN) return;
      this.dispatchEvent(new MessageEvent('message', { data: this.#convert(data, isBinary), origin }));
    });
    ws.on('error', () => {});
    ws.on('close', (code: number, reason: string) => this.#onClose(ws, code, reason));
    // The abort signal is only for the handshake; close() may have been called meanwhile.
    if (this.#readyState === CLOSING) {
      ws.terminate();
      return;
    }
    this.#readyState = OPEN;
    this.dispatchEvent(new Event('open'));
  }

  #convert(data: MessageData, isBinary: boolean): unknown {
    if (!isBinary) return typeof data === 'string' ? data : data.toString('utf8');
    const bytes = data as Buffer;
    if (this.#binaryType === 'nodebuffer') return bytes;
    if (this.#binaryType === 'blob') return new Blob([bytes]);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    const failed = ws.closeError !== undefined || code === 1006;
    this.#readyState = CLOSED;
    if (failed) {
      this.dispatchEvent(
        new ErrorEvent('error', {
          message: ws.closeError?.message ?? 'Connection closed abnormally',
          error: ws.closeError,
        }),
      );
    }
    this.dispatchEvent(
      new CloseEvent('close', {
        wasClean: !failed,
        code: failed ? 1006 : code,
        reason: failed ? '' : reason,
      }),
    );
  }

  #onFail(error: unknown): void {
    this.#readyState = CLOSED;
    this.dispatchEvent(
      new ErrorEvent('error', { message: error instanceof Error ? error.message : String(error), error }),
    );
    this.dispatchEvent(new CloseEvent('close', { wasClean: false, code: 1006, reason: '' }));
  }
}
