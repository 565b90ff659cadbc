import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WebSocket } from '../src/index.js';
import { waitFor, withTimeout } from './helpers.js';

/*
 * The connection needs only a stream.Duplex (issue 14: HTTP/2 streams for RFC 8441). Here two
 * in-memory duplexes with none of net.Socket's methods (no setNoDelay, no remoteAddress) carry
 * a whole session: messages both ways, the heartbeat, backpressure, the closing handshake.
 */
function duplexPair(): [Duplex, Duplex] {
  const ended = new WeakSet<Duplex>();
  const endOf = (d: Duplex): void => {
    if (ended.has(d)) return;
    ended.add(d);
    d.push(null);
  };
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        endOf(peer());
        callback();
      },
      // Like a socket reset: the other side sees its input end.
      destroy(error, callback) {
        endOf(peer());
        callback(error);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

function pair(
  options: { heartbeatInterval?: number; maxBufferedAmount?: number } = {},
): [WebSocket, WebSocket] {
  const [s, c] = duplexPair();
  const setup = { protocol: '', extensions: '', deflate: null, deflateThreshold: 1024 };
  const server = new WebSocket(
    s,
    null,
    { ...setup, isServer: true, url: '/', heartbeatInterval: options.heartbeatInterval ?? 0 },
    options,
  );
  const client = new WebSocket(
    c,
    null,
    { ...setup, isServer: false, url: 'ws://memory/', heartbeatInterval: 0 },
    {},
  );
  return [server, client];
}

describe('a WebSocket over any Duplex', () => {
  it('exchanges messages and closes cleanly without a net.Socket', async () => {
    const [server, client] = pair();
    expect(server.transport).toBe('http/1.1');
    expect(server.remoteAddress).toBeUndefined();
    server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));
    const got: unknown[] = [];
    client.on('message', (d) => got.push(d));
    await client.send('hello');
    await client.send(Buffer.from([1, 2, 3]));
    await waitFor(() => got.length === 2);
    expect(got).toEqual(['hello', Buffer.from([1, 2, 3])]);
    await withTimeout(client.close(4000, 'done'), 10_000, 'client closed');
    await withTimeout(server.whenClosed(), 10_000, 'server closed');
    expect(server.closeCode).toBe(4000);
    expect(server.closeReason).toBe('done');
    expect(client.closeError).toBeUndefined();
  });

  it('keeps readyState read-only', async () => {
    const [server, client] = pair();
    expect(() => {
      (server as unknown as { readyState: number }).readyState = 3;
    }).toThrow(TypeError);
    expect(server.readyState).toBe(WebSocket.OPEN);
    client.terminate();
    await withTimeout(server.whenClosed(), 10_000, 'closed');
    expect(server.readyState).toBe(WebSocket.CLOSED);
  });

  it('runs the heartbeat over the stream: our client answers with the ping payload', async () => {
    const [server, client] = pair({ heartbeatInterval: 60 });
    const pongs: Buffer[] = [];
    server.on('pong', (d) => pongs.push(d));
    await waitFor(() => pongs.length >= 3, 10_000, 'three heartbeat pongs');
    expect(pongs.every((p) => p.length === 4)).toBe(true);
    expect(server.readyState).toBe(WebSocket.OPEN);
    await client.close();
  });
});
