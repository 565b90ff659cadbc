import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { createClient } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import RwsModule from 'reconnecting-websocket';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer as WSServer } from 'ws';
import { BrowserWebSocket, WebSocketServer } from '../src/index.js';
import { withTimeout } from './helpers.js';

// Real libraries written for the browser WebSocket, driven through BrowserWebSocket.

// graphql-ws is loaded by Node (CommonJS graphql); build the schema with that same copy, or
// graphql refuses a schema "from another module or realm".
const { buildSchema } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

// reconnecting-websocket ships CJS with `exports.default`; unwrap whichever shape the loader gave.
type RwsClass = (typeof RwsModule)['default'];
const ReconnectingWebSocket: RwsClass =
  (RwsModule as unknown as { default?: RwsClass }).default ?? (RwsModule as unknown as RwsClass);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('graphql-ws client with webSocketImpl: BrowserWebSocket', () => {
  it('completes a subscription against a graphql-ws server', async () => {
    const schema = buildSchema(`
      type Query { hello: String }
      type Subscription { countdown(from: Int!): Int }
    `);
    const roots = {
      query: { hello: () => 'world' },
      subscription: {
        countdown: async function* ({ from }: { from: number }) {
          for (let i = from; i >= 0; i--) yield { countdown: i };
        },
      },
    };
    const wss = new WSServer({ port: 0, host: '127.0.0.1', path: '/graphql' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const server = useServer({ schema, roots }, wss);
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          void Promise.resolve(server.dispose()).then(() => wss.close(() => resolve()));
        }),
    );
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/graphql`;
    let connected = 0;
    const client = createClient({
      url,
      webSocketImpl: BrowserWebSocket,
      retryAttempts: 0,
      on: { connected: () => connected++ },
    });
    cleanups.push(() => client.dispose());

    const values: number[] = [];
    await withTimeout(
      new Promise<void>((resolve, fail) => {
        client.subscribe<{ countdown: number }>(
          { query: 'subscription { countdown(from: 3) }' },
          {
            next: (result) => values.push(result.data!.countdown),
            error: fail,
            complete: resolve,
          },
        );
      }),
      15_000,
      'subscription complete',
    );
    expect(values).toEqual([3, 2, 1, 0]);
    expect(connected).toBe(1);

    const query = await withTimeout(
      new Promise<unknown>((resolve, fail) => {
        let data: unknown;
        client.subscribe(
          { query: '{ hello }' },
          { next: (r) => (data = r.data), error: fail, complete: () => resolve(data) },
        );
      }),
      15_000,
      'query',
    );
    expect(query).toEqual({ hello: 'world' });
  });
});

describe('reconnecting-websocket with WebSocket: BrowserWebSocket', () => {
  it('reconnects after the server drops the connection and keeps working', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', heartbeatInterval: 0 });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    cleanups.push(() => wss.close());
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      if (connections === 1) {
        // Drop the first connection without a closing handshake.
        setTimeout(() => ws.terminate(), 50);
        return;
      }
      ws.on('message', (data) => ws.send(`echo:${String(data)}`).catch(() => {}));
    });
    const rws = new ReconnectingWebSocket(wss.url!, [], {
      WebSocket: BrowserWebSocket,
      minReconnectionDelay: 50,
      maxReconnectionDelay: 200,
      connectionTimeout: 5_000,
      maxRetries: 5,
    });
    cleanups.push(() => rws.close());
    const opens: number[] = [];
    const closes: number[] = [];
    rws.addEventListener('close', (e) => {
      closes.push(e.code);
    });
    const reply = withTimeout(
      new Promise<string>((resolve) => {
        rws.addEventListener('open', () => {
          opens.push(Date.now());
          if (opens.length === 2) rws.send('after reconnect');
        });
        rws.addEventListener('message', (e) => resolve(String(e.data)));
      }),
      15_000,
      'reply after reconnect',
    );
    expect(await reply).toBe('echo:after reconnect');
    expect(opens.length).toBe(2);
    // The drop fires error then close; reconnecting-websocket reports the error as its own close (1000).
    expect(closes.length).toBe(1);
    expect(rws.retryCount).toBeGreaterThanOrEqual(1);
  });
});
