import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import { InvalidArgumentError, WebSocketServer, type WebSocket } from '../src/index.js';
import { withTimeout } from './helpers.js';

// One test per row of the README's "Moving from ws" table, with the `ws` client as the peer.

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function track(wss: WebSocketServer): WebSocketServer {
  cleanups.push(() => wss.close());
  return wss;
}

function listening(wss: WebSocketServer): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, fail) => {
      wss.once('listening', resolve);
      wss.once('error', fail);
    }),
    10_000,
    'listening',
  );
}

function openWs(url: string, protocols?: string[]): Promise<WS> {
  const ws = new WS(url, protocols);
  cleanups.push(() => ws.terminate());
  return withTimeout(
    new Promise<WS>((resolve, fail) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', fail);
    }),
    10_000,
    'ws open',
  );
}

function nextMessage(ws: WS): Promise<[Buffer, boolean]> {
  return withTimeout(
    new Promise((resolve) =>
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve([data, isBinary])),
    ),
    10_000,
    'message',
  );
}

function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary }).catch(() => {});
  });
}

function portOf(wss: WebSocketServer): number {
  return (wss.address() as AddressInfo).port;
}

describe('Moving from ws: server construction', () => {
  it('new WebSocketServer({ port, host }, callback) listens, calls back, answers plain HTTP with 426', async () => {
    let calledBack = false;
    const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => (calledBack = true)));
    await listening(wss);
    expect(calledBack).toBe(true);
    const port = portOf(wss);
    expect(port).toBeGreaterThan(0);
    expect(wss.url).toBe(`ws://127.0.0.1:${port}`);
    const status = await new Promise<number>((resolve, fail) => {
      http
        .get(`http://127.0.0.1:${port}/`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', fail);
    });
    expect(status).toBe(426);
    wss.on('connection', echo);
    const client = await openWs(`ws://127.0.0.1:${port}/`);
    const reply = nextMessage(client);
    client.send('hi');
    const [data, isBinary] = await reply;
    expect(data.toString()).toBe('hi');
    expect(isBinary).toBe(false);
  });

  it("a port already in use is reported through the 'error' event", async () => {
    const first = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
    await listening(first);
    const second = track(new WebSocketServer({ port: portOf(first), host: '127.0.0.1' }));
    const error = await withTimeout(
      new Promise<NodeJS.ErrnoException>((resolve) => second.once('error', resolve)),
      10_000,
      'error',
    );
    expect(error.code).toBe('EADDRINUSE');
  });

  it('new WebSocketServer({ server }) handles the upgrades of an existing server and forwards listening', async () => {
    const httpServer = http.createServer((_req, res) => res.end('plain'));
    cleanups.push(() => new Promise((r) => httpServer.close(r)));
    const wss = track(new WebSocketServer({ server: httpServer }));
    const ready = listening(wss);
    httpServer.listen(0, '127.0.0.1');
    await ready;
    const port = portOf(wss);
    expect(port).toBe((httpServer.address() as AddressInfo).port);
    const connected = new Promise<string>((resolve) =>
      wss.on('connection', (_ws, req) => resolve(req.url ?? '')),
    );
    await openWs(`ws://127.0.0.1:${port}/room?x=1`);
    expect(await withTimeout(connected, 10_000, 'connection')).toBe('/room?x=1');
    // close() stops handling upgrades but leaves the given server running.
    await wss.close();
    expect(httpServer.listening).toBe(true);
    expect(httpServer.listenerCount('upgrade')).toBe(0);
  });

  it('new WebSocketServer({ noServer: true }) + handleUpgrade(req, socket, head, cb) calls cb instead of emitting connection', async () => {
    const wss = track(new WebSocketServer({ noServer: true }));
    expect(() => wss.address()).toThrow(InvalidArgumentError);
    let emitted = 0;
    wss.on('connection', () => emitted++);
    const httpServer = http.createServer();
    cleanups.push(() => new Promise((r) => httpServer.close(r)));
    const viaCallback = new Promise<WebSocket>((resolve) => {
      httpServer.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (ws, request) => {
          expect(request).toBe(req);
          echo(ws);
          resolve(ws);
        });
      });
    });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    const client = await openWs(`ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}`);
    const ws = await withTimeout(viaCallback, 10_000, 'callback');
    expect(emitted).toBe(0);
    expect(wss.clients.has(ws)).toBe(true);
    const reply = nextMessage(client);
    client.send(Buffer.from([1, 2, 3]));
    const [data, isBinary] = await reply;
    expect([...data]).toEqual([1, 2, 3]);
    expect(isBinary).toBe(true);
  });

  it('rejects more than one of port, server and noServer, as ws does', () => {
    expect(() => new WebSocketServer({ port: 0, noServer: true })).toThrow(InvalidArgumentError);
    expect(() => new WebSocketServer({ server: http.createServer(), noServer: true })).toThrow(
      /port.*server.*noServer/,
    );
  });
});

describe('Moving from ws: connections', () => {
  it("'connection' gives (ws, req), clients tracks open connections and forgets closed ones", async () => {
    const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
    await listening(wss);
    const seen = new Promise<[WebSocket, http.IncomingMessage]>((resolve) =>
      wss.on('connection', (ws, req) => resolve([ws, req])),
    );
    const client = await openWs(`ws://127.0.0.1:${portOf(wss)}/path`);
    const [ws, req] = await withTimeout(seen, 10_000, 'connection');
    expect(req.headers.upgrade?.toLowerCase()).toBe('websocket');
    expect(wss.clients.size).toBe(1);
    expect(wss.clients.has(ws)).toBe(true);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    client.close(1000);
    await withTimeout(closed, 10_000, 'close');
    expect(wss.clients.size).toBe(0);
  });

  it('textAsBuffer: text arrives as a Buffer with isBinary false (Buffer.isBuffer code keeps working)', async () => {
    const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1', textAsBuffer: true }));
    await listening(wss);
    const got: Array<[unknown, boolean]> = [];
    const two = new Promise<void>((resolve) =>
      wss.on('connection', (ws) =>
        ws.on('message', (data, isBinary) => {
          got.push([data, isBinary]);
          if (got.length === 2) resolve();
        }),
      ),
    );
    const client = await openWs(`ws://127.0.0.1:${portOf(wss)}`);
    client.send('héllo');
    client.send(Buffer.from('bin'));
    await withTimeout(two, 10_000, 'messages');
    expect(Buffer.isBuffer(got[0]![0])).toBe(true);
    expect((got[0]![0] as Buffer).toString('utf8')).toBe('héllo');
    expect(got[0]![1]).toBe(false);
    expect(Buffer.isBuffer(got[1]![0])).toBe(true);
    expect(got[1]![1]).toBe(true);
  });

  it('without textAsBuffer text arrives as a string', async () => {
    const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
    await listening(wss);
    const first = new Promise<unknown>((resolve) =>
      wss.on('connection', (ws) => ws.once('message', resolve)),
    );
    const client = await openWs(`ws://127.0.0.1:${portOf(wss)}`);
    client.send('plain');
    expect(await withTimeout(first, 10_000, 'message')).toBe('plain');
  });

  it('verifyClient → authorize, handleProtocols(Set) → handleProtocols(array), path', async () => {
    const wss = track(
      new WebSocketServer({
        port: 0,
        host: '127.0.0.1',
        path: '/ws',
        authorize: (req) => req.headers['x-token'] === 'ok' || { status: 403 },
        handleProtocols: (offered) => (offered.includes('b') ? 'b' : false),
      }),
    );
    await listening(wss);
    const url = `ws://127.0.0.1:${portOf(wss)}`;
    const refused = (target: string, headers: Record<string, string>) =>
      withTimeout(
        new Promise<number>((resolve) => {
          const ws = new WS(target, { headers });
          ws.on('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            ws.terminate();
          });
          ws.on('error', () => {});
        }),
        10_000,
        'refusal',
      );
    expect(await refused(`${url}/ws`, { 'x-token': 'no' })).toBe(403);
    expect(await refused(`${url}/other`, { 'x-token': 'ok' })).toBe(404);
    const ws = new WS(`${url}/ws`, ['a', 'b'], { headers: { 'x-token': 'ok' } });
    cleanups.push(() => ws.terminate());
    await withTimeout(
      new Promise((r, j) => {
        ws.once('open', r);
        ws.once('error', j);
      }),
      10_000,
      'open',
    );
    expect(ws.protocol).toBe('b');
  });

  it('ws.send(data, cb) → await ws.send(data); ping/pong and terminate() as in ws', async () => {
    const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
    await listening(wss);
    const server = new Promise<WebSocket>((resolve) => wss.on('connection', resolve));
    const client = await openWs(`ws://127.0.0.1:${portOf(wss)}`);
    const ws = await withTimeout(server, 10_000, 'connection');
    const msg = nextMessage(client);
    await ws.send('done');
    expect((await msg)[0].toString()).toBe('done');
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
    await ws.ping('p1');
    expect((await withTimeout(pong, 10_000, 'pong')).toString()).toBe('p1');
    const clientClosed = new Promise<number>((resolve) => client.once('close', resolve));
    ws.terminate();
    expect(await withTimeout(clientClosed, 10_000, 'client close')).toBe(1006);
  });

  it('close(cb): closes clients (1001), the owned HTTP server, then calls back and emits close', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await listening(wss);
    const port = portOf(wss);
    const client = await openWs(`ws://127.0.0.1:${port}`);
    const clientClosed = new Promise<number>((resolve) => client.once('close', resolve));
    const emitted = new Promise<void>((resolve) => wss.once('close', resolve));
    const calledBack = new Promise<Error | undefined>((resolve) => wss.close((error) => resolve(error)));
    expect(await withTimeout(calledBack, 15_000, 'close callback')).toBeUndefined();
    await withTimeout(emitted, 1_000, 'close event');
    expect(await withTimeout(clientClosed, 10_000, 'client close')).toBe(1001);
    expect(wss.httpServer?.listening).toBe(false);
    await expect(
      new Promise((resolve, fail) => {
        const late = new WS(`ws://127.0.0.1:${port}`);
        late.on('open', resolve);
        late.on('error', fail);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
