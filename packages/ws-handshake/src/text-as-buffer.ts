import type { WebSocket } from './websocket.js';

type AnyEmit = (this: WebSocket, name: string | symbol, ...args: unknown[]) => boolean;

/**
 * `ws` delivers every message as a Buffer; code ported from it often branches on
 * `Buffer.isBuffer(data)`. Re-encoding at the event boundary keeps the receiver's fast string
 * path untouched for everyone who does not ask for this.
 */
export function deliverTextAsBuffer(ws: WebSocket): void {
  const emit = ws.emit as unknown as AnyEmit;
  const wrapped: AnyEmit = function emitTextAsBuffer(name, ...args) {
    if (name === 'message' && typeof args[0] === 'string') {
      return emit.call(this, 'message', Buffer.from(args[0], 'utf8'), args[1]);
    }
    return emit.call(this, name, ...args);
  };
  ws.emit = wrapped as unknown as WebSocket['emit'];
}
