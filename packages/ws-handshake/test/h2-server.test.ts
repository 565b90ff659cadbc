import http2 from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handleH2Connect, isWebSocketConnect, WebSocket, WebSocketServer } from '../src/index.js';
import { h2Server, h2Session, makeCert, rawConnect, readBody } from './h2-helpers.js';
import { FrameReader, frame, waitFor, withTimeout } from './helpers.js';

// RFC 8441 server side against a real node:http2 client session over TLS on loopback.

let tls: { key: Buffer; cert: Buffer };
beforeAll(() => {
  tls = makeCert();
});

/** The client half as our own WebSocket class over the client stream (connect() comes later). */
function clientOver(stream: http2.ClientHttp2Stream, protocol = ''): WebSocket {
  return new WebSocket(
    stream,
    null,
    {
      isServer: false,
      url: 'wss://localhost/',
      protocol,
      extensions: '',
      deflate: null,
      deflateThreshold: 1024,
      heartbeatInterval: 0,
      transport: 'h2',
    },
    {},
  );
}

describe('WebSocketServer.attachH2', () => {
  let server: http2.Http2SecureServer;
  let origin: string;
  let wss: WebSocketServer;
  let session: http2.ClientHttp2Session;
  const accepted: WebSocket[] = [];
  const requests: unknown[] = [];

  beforeAll(async () => {
    ({ server, origin } = await h2Server(tls));
    wss = new WebSocketServer({
      path: '/ws',
      heartbeatInterval: 0,
      protocols: ['chat'],
      perMessageDeflate: true,
      allowedOrigins: ['https://good.example'],
      authorize: (req) => {
        if (req.headers.authorization === 'no') return false;
        if (req.headers.authorization === 'teapot') return { status: 418, body: 'short and stout' };
        return true;
      },
    });
    wss.attachH2(server);
    wss.on('connection', (ws, req) => {
      accepted.push(ws);
      requests.push(req);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }).catch(() => {}));
    });
    session = await h2Session(origin, tls.cert);
  });
  afterEach(() => {
    accepted.length = 0;
    requests.length = 0;
  });
  afterAll(async () => {
    session.close();
    await wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers 200 without Sec-WebSocket-Accept and speaks RFC 6455 frames on the stream', async () => {
    const { status, headers, stream } = await rawConnect(session, '/ws?room=1', {
      'sec-websocket-protocol': 'other, chat',
    });
    expect(status).toBe(200);
    expect(headers['sec-websocket-accept']).toBeUndefined();
    expect(headers['sec-websocket-protocol']).toBe('chat');
    expect(headers['sec-websocket-extensions']).toBeUndefined();
    await waitFor(() => accepted.length === 1);
    const ws = accepted[0]!;
    expect(ws.transport).toBe('h2');
    expect(ws.url).toBe('/ws?room=1');
    expect(ws.protocol).toBe('chat');
    expect(ws.remoteAddress).toBe('127.0.0.1');
    expect((requests[0] as { method: string; headers: Record<string, string> }).method).toBe('CONNECT');
    expect((requests[0] as { headers: Record<string, string> }).headers.host).toBe('localhost');

    const reader = new FrameReader();
    stream.on('data', (c: Buffer) => reader.push(c));
    const ended = new Promise<void>((resolve) => stream.once('end', () => resolve()));
    stream.write(frame({ opcode: 1, payload: 'hello over h2' }));
    stream.write(frame({ opcode: 2, payload: Buffer.from([0, 1, 2, 255]) }));
    await waitFor(() => reader.frames.length === 2, 10_000, 'two echoes');
    expect(reader.frames[0]!.opcode).toBe(1);
    expect(reader.frames[0]!.masked).toBe(false);
    expect(reader.frames[0]!.payload.toString()).toBe('hello over h2');
    expect(reader.frames[1]!.opcode).toBe(2);
    expect([...reader.frames[1]!.payload]).toEqual([0, 1, 2, 255]);

    // Close handshake, then the server ends the stream (END_STREAM) and it closes without a reset.
    stream.write(frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) }));
    await waitFor(() => reader.frames.length === 3, 10_000, 'close echo');
    expect(reader.frames[2]!.opcode).toBe(8);
    await withTimeout(ended, 10_000, 'END_STREAM from the server');
    stream.end();
    await withTimeout(ws.whenClosed(), 10_000, 'server side closed');
    expect(ws.closeCode).toBe(1000);
    await waitFor(() => stream.closed);
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });

  it('negotiates permessage-deflate', async () => {
    const { status, headers, stream } = await rawConnect(session, '/ws', {
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
    });
    expect(status).toBe(200);
    expect(headers['sec-websocket-extensions']).toMatch(/^permessage-deflate/);
    await waitFor(() => accepted.length === 1);
    expect(accepted[0]!.extensions).toMatch(/^permessage-deflate/);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await withTimeout(accepted[0]!.whenClosed(), 10_000, 'closed');
  });

  it('exchanges text, binary, ping and a clean close with a WebSocket over the client stream', async () => {
    const { stream } = await rawConnect(session, '/ws', { 'sec-websocket-protocol': 'chat' });
    const client = clientOver(stream, 'chat');
    await waitFor(() => accepted.length === 1);
    const server = accepted[0]!;
    const got: unknown[] = [];
    client.on('message', (d) => got.push(d));
    const pong = new Promise<Buffer>((resolve) => client.once('pong', resolve));
    await client.send('text');
    await client.send(Buffer.alloc(70_000, 7));
    await client.ping(Buffer.from('p'));
    expect((await pong).toString()).toBe('p');
    await waitFor(() => got.length === 2);
    expect(got[0]).toBe('text');
    expect((got[1] as Buffer).equals(Buffer.alloc(70_000, 7))).toBe(true);
    await withTimeout(client.close(4001, 'bye'), 10_000, 'client close');
    await withTimeout(server.whenClosed(), 10_000, 'server close');
    expect(server.closeCode).toBe(4001);
    expect(server.closeReason).toBe('bye');
    expect(client.closeCode).toBe(4001);
    expect(client.closeError).toBeUndefined();
    expect(wss.clients.has(server)).toBe(false);
    // The session outlives its WebSockets.
    expect(session.closed).toBe(false);
  });

  it('gives 1006 when the stream is reset without a closing handshake', async () => {
    const { stream } = await rawConnect(session, '/ws');
    await waitFor(() => accepted.length === 1);
    const server = accepted[0]!;
    const closed = new Promise<number>((resolve) => server.once('close', (code) => resolve(code)));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    expect(await withTimeout(closed, 10_000, 'server close')).toBe(1006);
  });

  it('multiplexes many WebSockets on one session', async () => {
    const n = 25;
    const clients = await Promise.all(
      Array.from({ length: n }, async () => clientOver((await rawConnect(session, '/ws')).stream)),
    );
    await waitFor(() => accepted.length === n);
    const sessions = new Set(
      accepted.map(
        (ws) => (requests[accepted.indexOf(ws)] as { stream: http2.ServerHttp2Stream }).stream.session,
      ),
    );
    expect(sessions.size).toBe(1);
    const replies = await Promise.all(
      clients.map(
        (c, i) =>
          new Promise<string>((resolve) => {
            c.once('message', (d) => resolve(String(d)));
            c.send(`n${i}`).catch(() => {});
          }),
      ),
    );
    expect(replies).toEqual(clients.map((_, i) => `n${i}`));
    await Promise.all(clients.map((c) => withTimeout(c.close(), 10_000, 'close')));
    await Promise.all(accepted.map((ws) => withTimeout(ws.whenClosed(), 10_000, 'server close')));
    expect(wss.clients.size).toBe(0);
  });

  it.each([
    ['a wrong version', '/ws', { 'sec-websocket-version': '8' }, 400],
    ['a bad Sec-WebSocket-Protocol', '/ws', { 'sec-websocket-protocol': 'a, a' }, 400],
    ['a bad Sec-WebSocket-Extensions', '/ws', { 'sec-websocket-extensions': ';;' }, 400],
    ['another path', '/nope', {}, 404],
    ['a foreign Origin', '/ws', { origin: 'https://evil.example' }, 403],
    ['authorize returning false', '/ws', { authorization: 'no' }, 401],
    ['authorize returning a status', '/ws', { authorization: 'teapot' }, 418],
  ] as const)('refuses %s', async (_what, path, extra, expected) => {
    const { status, headers, stream } = await rawConnect(session, path, { ...extra });
    expect(status).toBe(expected);
    if (expected === 400 && 'sec-websocket-version' in extra)
      expect(headers['sec-websocket-version']).toBe('13');
    const body = await readBody(stream);
    expect(body.length).toBeGreaterThan(0);
    expect(accepted.length).toBe(0);
  });

  it('accepts an allowed Origin', async () => {
    const { status, stream } = await rawConnect(session, '/ws', { origin: 'https://good.example' });
    expect(status).toBe(200);
    await waitFor(() => accepted.length === 1);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await withTimeout(accepted[0]!.whenClosed(), 10_000, 'closed');
  });
});

describe('handleH2Connect on a server that also serves requests', () => {
  it('takes only WebSocket CONNECTs and leaves ordinary streams alone (compat request listener too)', async () => {
    const { server, origin } = await h2Server(tls);
    server.on('request', (req, res) => {
      if (req.method === 'CONNECT') return;
      res.end(`page ${req.url}`);
    });
    server.on('connect', () => {});
    const opened: WebSocket[] = [];
    server.on('stream', (stream, headers) => {
      if (!isWebSocketConnect(headers)) return;
      void handleH2Connect(stream, headers, { heartbeatInterval: 0 }).then((ws) => {
        if (ws === null) return;
        opened.push(ws);
        ws.on('message', (d) => ws.send(`echo ${d}`));
      });
    });
    const session = await h2Session(origin, tls.cert);
    try {
      const page = session.request({ ':path': '/index.html' });
      expect(await readBody(page)).toBe('page /index.html');
      const { status, stream } = await rawConnect(session, '/anything');
      expect(status).toBe(200);
      const client = clientOver(stream);
      const reply = new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
      await client.send('x');
      expect(await withTimeout(reply, 10_000, 'echo')).toBe('echo x');
      expect(opened[0]!.transport).toBe('h2');
      await withTimeout(client.close(), 10_000, 'close');
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
