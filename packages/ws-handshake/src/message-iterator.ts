import { ReadyState } from './constants.js';
import type { MessageData, WebSocket } from './websocket.js';

const noop = (): void => {};

/**
 * `for await (const msg of ws)`: queues messages until they are pulled, pauses reading from the
 * socket once `iteratorHighWaterMark` wait and resumes at half of it. The loop ends when the
 * connection closes and throws `closeError` (once) when it failed.
 */
export class MessageIterator implements AsyncIterableIterator<MessageData> {
  private readonly ws: WebSocket;
  private readonly queue: MessageData[] = [];
  private waiting: { resolve: (r: IteratorResult<MessageData>) => void; reject: (e: Error) => void } | null =
    null;
  private done = false;
  private paused = false;
  private errorReported = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
    if (ws.readyState === ReadyState.CLOSED) {
      this.done = true;
    } else {
      ws.on('message', this.onMessage);
      ws.on('close', this.onClose);
    }
  }

  private readonly onMessage = (data: MessageData): void => {
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      w.resolve({ value: data, done: false });
      return;
    }
    this.queue.push(data);
    if (!this.paused && this.queue.length >= this.ws.iteratorHighWaterMark) {
      this.paused = true;
      this.ws.pauseReading();
    }
  };

  private readonly onClose = (): void => {
    this.done = true;
    this.detach();
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      const error = this.ws.closeError;
      if (error !== undefined) {
        this.errorReported = true;
        w.reject(error);
      } else {
        w.resolve({ value: undefined, done: true });
      }
    }
  };

  private detach(): void {
    this.ws.removeListener('message', this.onMessage);
    this.ws.removeListener('close', this.onClose);
  }

  next(): Promise<IteratorResult<MessageData>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift()!;
      if (this.paused && this.queue.length <= this.ws.iteratorHighWaterMark >>> 1) {
        this.paused = false;
        this.ws.resumeReading();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      const error = this.ws.closeError;
      if (error !== undefined && !this.errorReported && this.ws.readyState === ReadyState.CLOSED) {
        // Report the failure once, then behave like a finished iterator.
        this.errorReported = true;
        return Promise.reject(error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<MessageData>> {
    this.done = true;
    this.queue.length = 0;
    this.detach();
    if (this.paused) this.ws.resumeReading();
    if (this.ws.readyState === ReadyState.OPEN) this.ws.close(1000).catch(noop);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
