import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type CloseMessage,
  connect,
  createWebSocketServer,
  type ErrorMessage,
  type HandshakeMessage,
  type OpenMessage,
  type SlowConsumerMessage,
  type WebSocket,
} from '../src/index.js';
import { frame, rawClient, waitFor, withTimeout } from './helpers.js';

const NAMES = ['net:ws:handshake', 'net:ws:open', 'net:ws:close', 'net:ws:error', 'net:ws:slow-consumer'];

interface Recorded {
  handshake: HandshakeMessage[];
  open: OpenMessage[];
  close: CloseMessage[];
  error: ErrorMessage[];
  slow: SlowConsumerMessage[];
}

let unsubscribe: (() => void) | null = null;
afterEach(() => {
  unsubscribe?.();
  unsubscribe = null;
});

function record(): Recorded {
  const rec: Recorded = { handshake: [], open: [], close: [], error: [], slow: [] };
  const lists = [rec.handshake, rec.open, rec.close, rec.error, rec.slow] as unknown[][];
  const handlers = NAMES.map((name, i) => {
    const handler = (message: unknown) => lists[i]!.push(message);
    diagnostics.subscribe(name, handler);
    return handler;
  });
  unsubscribe = () => {
    NAMES.forEach((name, i) => {
      diagnostics.unsubscribe(name, handlers[i]!);
    });
  };
  return rec;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('diagnostics_channel', () => {
  it('publishes nothing while nobody subscribes', async () => {
    const channels = NAMES.map((name) => diagnostics.channel(name));
    for (const c of channels) expect(c.hasSubscribers).toBe(false);
    const spies = channels.map((c) => vi.spyOn(c, 'publish'));
    try {
      const srv = await createWebSocketServer({
        heartbeatInterval: 0,
        allowedOrigins: ['https://ok.example'],
      });
      const ws = await connect(`ws://127.0.0.1:${srv.port}`);
      await ws.send('x');
      await ws.close(1000);
      await expect(
        connect(`ws://127.0.0.1:${srv.port}`, { origin: 'https://evil.example' }),
      ).rejects.toThrow();
      await srv.close();
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('handshake, open and close: timing, outcome, code and initiator on both sides', async () => {
    const rec = record();
    const srv = await createWebSocketServer({ heartbeatInterval: 0, protocols: ['chat'] });
    const serverSide = new Promise<WebSocket>((r) => srv.once('connection', r));
    const client = await connect(`ws://127.0.0.1:${srv.port}/room?x=1`, { protocols: ['chat'] });
    const server = await serverSide;
    await waitFor(() => rec.handshake.length === 2 && rec.open.length === 2);
    const sh = rec.handshake.find((h) => h.side === 'server')!;
    expect(sh).toMatchObject({ outcome: 'accepted', status: 101, url: '/room?x=1', transport: 'http/1.1' });
    expect(sh.ws).toBe(server);
    expect(sh.remoteAddress).toBe('127.0.0.1');
    expect(sh.durationMs).toBeGreaterThanOrEqual(0);
    expect(sh.durationMs).toBeLessThan(10_000);
    const ch = rec.handshake.find((h) => h.side === 'client')!;
    expect(ch).toMatchObject({
      outcome: 'accepted',
      status: 101,
      url: `ws://127.0.0.1:${srv.port}/room?x=1`,
    });
    expect(ch.ws).toBe(client);
    const so = rec.open.find((o) => o.side === 'server')!;
    expect(so).toMatchObject({
      ws: server,
      url: '/room?x=1',
      protocol: 'chat',
      extensions: '',
      transport: 'http/1.1',
    });
    expect(rec.open.find((o) => o.side === 'client')!.ws).toBe(client);

    await client.close(4001, 'bye');
    await withTimeout(server.whenClosed(), 10_000, 'server side closed');
    await waitFor(() => rec.close.length === 2);
    const sc = rec.close.find((c) => c.ws === server)!;
    const cc = rec.close.find((c) => c.ws === client)!;
    expect(sc).toMatchObject({
      code: 4001,
      reason: 'bye',
      initiator: 'remote',
      wasClean: true,
      error: undefined,
    });
    // closeReason is what the peer said; the server echoed the code without a reason.
    expect(cc).toMatchObject({
      code: 4001,
      reason: '',
      initiator: 'local',
      wasClean: true,
      error: undefined,
    });
    expect(rec.error).toEqual([]);
    await srv.close();
  });

  it('refused and failed handshakes', async () => {
    const rec = record();
    const srv = await createWebSocketServer({ heartbeatInterval: 0, allowedOrigins: ['https://ok.example'] });
    await expect(
      connect(`ws://127.0.0.1:${srv.port}`, { origin: 'https://evil.example' }),
    ).rejects.toMatchObject({ status: 403 });
    await waitFor(() => rec.handshake.length === 2);
    expect(rec.handshake.find((h) => h.side === 'server')).toMatchObject({
      outcome: 'rejected',
      status: 403,
      reason: 'Origin not allowed',
      ws: undefined,
    });
    expect(rec.handshake.find((h) => h.side === 'client')).toMatchObject({
      outcome: 'rejected',
      status: 403,
    });
    await srv.close();
    const port = await freePort();
    await expect(connect(`ws://127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'ERR_WS_SOCKET' });
    await waitFor(() => rec.handshake.length === 3);
    expect(rec.handshake[2]).toMatchObject({ side: 'client', outcome: 'failed', status: undefined });
    expect(rec.handshake[2]!.reason).toMatch(/ECONNREFUSED/);
    expect(rec.open).toEqual([]);
  });

  it('error then close for a protocol violation, with the local side as initiator', async () => {
    const rec = record();
    const srv = await createWebSocketServer({ heartbeatInterval: 0 });
    const serverSide = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!);
    const ws = await serverSide;
    c.write(frame({ opcode: 3 })); // reserved opcode
    const { code } = await c.closed();
    expect(code).toBe(1002);
    await withTimeout(ws.whenClosed(), 10_000, 'closed');
    await waitFor(() => rec.close.length === 1);
    expect(rec.error).toHaveLength(1);
    expect(rec.error[0]!.ws).toBe(ws);
    expect(rec.error[0]!.error.code).toBe('ERR_WS_PROTOCOL');
    // After a failure nothing more is parsed, the peer's answer included: not a clean close.
    expect(rec.close[0]).toMatchObject({ ws, code: 1002, initiator: 'local', wasClean: false });
    expect(rec.close[0]!.error?.code).toBe('ERR_WS_PROTOCOL');
    await srv.close();
  });

  it('slow-consumer with the queued amount, the limit and how long it was exceeded', async () => {
    const rec = record();
    const srv = await createWebSocketServer({
      heartbeatInterval: 0,
      maxBufferedAmount: 32 * 1024,
      slowConsumerTimeout: 150,
      closeTimeout: 150,
    });
    const serverSide = new Promise<WebSocket>((r) => srv.once('connection', r));
    const c = await rawClient(srv.port!);
    c.socket.pause();
    const ws = await serverSide;
    ws.on('error', () => {});
    // One large send crosses the limit without any further send: only the timer can fire.
    ws.send(Buffer.alloc(8 * 1024 * 1024)).catch(() => {});
    await withTimeout(ws.whenClosed(), 10_000, 'slow consumer closed');
    expect(rec.slow).toHaveLength(1);
    const s = rec.slow[0]!;
    expect(s.ws).toBe(ws);
    expect(s.maxBufferedAmount).toBe(32 * 1024);
    expect(s.bufferedAmount).toBeGreaterThan(32 * 1024);
    expect(s.overLimitMs).toBeGreaterThanOrEqual(130);
    expect(s.action).toBe('close');
    expect(rec.error.map((e) => e.error.code)).toEqual(['ERR_WS_SLOW_CONSUMER']);
    expect(rec.close.find((m) => m.ws === ws)).toMatchObject({
      code: 1008,
      initiator: 'local',
      wasClean: false,
    });
    c.socket.destroy();
    await srv.close();
  });
});
