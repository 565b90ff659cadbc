import * as http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from '../src/index.js';
import { selfSignedCert } from './helpers.js';
import {
  FRAME,
  getRequest,
  h2request,
  headersFrame,
  openSession,
  pingFrame,
  RawH2,
  rstFrame,
  settingsFrame,
  splitHeaders,
} from './h2-helpers.js';

const CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;

describe('HTTP/2 hostile clients', () => {
  let app: Server;
  let port: number;
  const violations: { code: string; limit?: string }[] = [];

  beforeAll(async () => {
    app = createServer({
      http2: 'h2c',
      h2: {
        maxConcurrentStreams: 10,
        maxSettingsPerWindow: 20,
        maxPingsPerWindow: 20,
        maxResetsPerWindow: 50,
        floodWindow: 5000,
        streamIdleTimeout: 400,
      },
    });
    app.get('/hello', () => 'hello');
    app.get('/think', () => new Promise((r) => setTimeout(() => r('thought'), 1000)));
    app.post('/upload', async (ctx) => (await ctx.buffer()).length);
    app.on('clientError', (err) => violations.push(err as unknown as { code: string; limit?: string }));
    ({ port } = await app.listen(0, '127.0.0.1'));
  });
  afterAll(() => app.close({ deadline: 500 }));

  /** A well-behaved client on its own session still gets answers. */
  async function stillServes(): Promise<void> {
    const session = await openSession(port);
    try {
      const r = await h2request(session, { ':path': '/hello' });
      expect(r).toMatchObject({ status: 200, body: 'hello' });
    } finally {
      session.close();
    }
  }

  it('cuts off a rapid-reset client (CVE-2023-44487) with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const attacker = new RawH2(port);
    const burst: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const id = 1 + 2 * i;
      burst.push(getRequest(id, '/hello'), rstFrame(id));
    }
    attacker.write(Buffer.concat(burst));
    expect(await attacker.waitClosed(5000)).toBe(true);
    expect(attacker.goawayCode()).toBe(CALM);
    expect(violations.some((v) => v.code === 'ERR_HTTP2_LIMIT' && v.limit === 'rapidReset')).toBe(true);
    await stillServes();
  });

  it('does not cut off a client that resets fewer streams than the limit', async () => {
    const client = new RawH2(port);
    const burst: Buffer[] = [];
    for (let i = 0; i < 20; i++) burst.push(getRequest(1 + 2 * i, '/hello'), rstFrame(1 + 2 * i));
    client.write(Buffer.concat(burst));
    expect(await client.waitClosed(800)).toBe(false);
    client.write(getRequest(101, '/hello'));
    await new Promise((r) => setTimeout(r, 300));
    expect(client.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 101)).toBe(true);
    client.destroy();
  });

  it('cuts off a SETTINGS flood', async () => {
    const attacker = new RawH2(port);
    attacker.write(Buffer.concat(Array.from({ length: 100 }, () => settingsFrame())));
    expect(await attacker.waitClosed(5000)).toBe(true);
    expect(attacker.goawayCode()).toBe(CALM);
    expect(violations.some((v) => v.limit === 'settingsFlood')).toBe(true);
    await stillServes();
  });

  it('cuts off a PING flood', async () => {
    const attacker = new RawH2(port);
    attacker.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => pingFrame(i))));
    expect(await attacker.waitClosed(5000)).toBe(true);
    expect(attacker.goawayCode()).toBe(CALM);
    expect(violations.some((v) => v.limit === 'pingFlood')).toBe(true);
    await stillServes();
  });

  it('refuses streams beyond maxConcurrentStreams (advertised in SETTINGS)', async () => {
    const client = new RawH2(port);
    const burst: Buffer[] = [];
    // POST without END_STREAM keeps each stream open waiting for its body.
    for (let i = 0; i < 15; i++)
      burst.push(
        headersFrame(
          1 + 2 * i,
          [
            [':method', 'POST'],
            [':scheme', 'http'],
            [':path', '/upload'],
            [':authority', 'localhost'],
          ],
          false,
        ),
      );
    client.write(Buffer.concat(burst));
    await new Promise((r) => setTimeout(r, 300));
    const settings = client.frames.find((f) => f.type === FRAME.SETTINGS && f.flags === 0)!;
    const advertised = new Map<number, number>();
    for (let o = 0; o + 6 <= settings.payload.length; o += 6)
      advertised.set(settings.payload.readUInt16BE(o), settings.payload.readUInt32BE(o + 2));
    expect(advertised.get(3 /* MAX_CONCURRENT_STREAMS */)).toBe(10);
    const refused = client.frames.filter(
      (f) =>
        f.type === FRAME.RST_STREAM && f.payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM,
    );
    expect(refused.map((f) => f.streamId)).toEqual([21, 23, 25, 27, 29]);
    client.destroy();
    await stillServes();
  });

  it('closes a session that keeps opening streams past the limit', async () => {
    const attacker = new RawH2(port);
    await attacker.settled();
    const burst: Buffer[] = [];
    for (let i = 0; i < 300; i++)
      burst.push(
        headersFrame(
          1 + 2 * i,
          [
            [':method', 'POST'],
            [':scheme', 'http'],
            [':path', '/upload'],
            [':authority', 'localhost'],
          ],
          false,
        ),
      );
    attacker.write(Buffer.concat(burst));
    expect(await attacker.waitClosed(5000)).toBe(true);
    expect(attacker.goawayCode()).toBeDefined();
    await stillServes();
  });

  for (const ack of [true, false]) {
    it(`resets a header block larger than maxHeaderListSize (client ${ack ? 'acked' : 'never acks'} SETTINGS)`, async () => {
      const client = new RawH2(port, undefined, ack);
      await client.settled();
      // 20 KB of headers: over the 16 KiB default, under the 64 KiB protocol default, in legal frames.
      client.write(
        splitHeaders(1, [
          [':method', 'GET'],
          [':scheme', 'http'],
          [':path', '/hello'],
          [':authority', 'localhost'],
          ['x-bomb', 'b'.repeat(10_000)],
          ['x-bomb2', 'c'.repeat(10_000)],
        ]),
      );
      await new Promise((r) => setTimeout(r, 300));
      const answered = client.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1);
      const reset = client.frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
      expect(answered).toBe(false);
      expect(reset?.payload.readUInt32BE(0)).toBe(CALM);
      // The same session can still make a normal request.
      client.write(getRequest(3, '/hello'));
      await new Promise((r) => setTimeout(r, 300));
      expect(client.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 3)).toBe(true);
      client.destroy();
      await stillServes();
    });
  }

  it('resets a stream that goes idle (streamIdleTimeout) and keeps the session', async () => {
    const client = new RawH2(port);
    client.write(
      headersFrame(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', '/upload'],
          [':authority', 'localhost'],
        ],
        false,
      ),
    );
    await new Promise((r) => setTimeout(r, 1200));
    const reset = client.frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
    expect(reset?.payload.readUInt32BE(0)).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(violations.some((v) => v.limit === 'streamIdle')).toBe(true);
    client.write(getRequest(3, '/hello'));
    await new Promise((r) => setTimeout(r, 300));
    expect(client.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 3)).toBe(true);
    client.destroy();
  });

  it('does not reset a stream whose handler is slow to answer a complete request', async () => {
    const session = await openSession(port);
    try {
      const r = await h2request(session, { ':path': '/think' });
      expect(r).toMatchObject({ status: 200, body: 'thought' });
    } finally {
      session.close();
    }
  });

  it('refuses a Host field that disagrees with :authority (400)', async () => {
    const client = new RawH2(port);
    client.write(
      headersFrame(1, [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/hello'],
        [':authority', 'localhost'],
        ['host', 'evil.example'],
      ]),
    );
    await new Promise((r) => setTimeout(r, 300));
    const head = client.frames.find((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    expect(head).toBeDefined();
    // HPACK static index 8 is ":status: 200"; 0x48 + literal "400" or index 12 (0x8c) is 400.
    expect(head!.payload[0]).not.toBe(0x88);
    const data = client.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1);
    expect(Buffer.concat(data.map((f) => f.payload)).toString()).toContain('ERR_HTTP_DUPLICATE_HOST');
    client.destroy();
  });

  it('never routes a request with two Host fields (nghttp2 resets it as malformed)', async () => {
    const client = new RawH2(port);
    client.write(
      headersFrame(1, [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/hello'],
        [':authority', 'localhost'],
        ['host', 'localhost'],
        ['host', 'localhost'],
      ]),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(client.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1)).toBe(false);
    const reset = client.frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
    expect(reset?.payload.readUInt32BE(0)).toBe(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    client.destroy();
  });
});

describe('HTTP/2 hostile clients over TLS', () => {
  it('cuts off a rapid-reset client on an h2 TLS server and keeps serving others', async () => {
    const { key, cert } = selfSignedCert();
    const app = createServer({ tls: { key, cert }, http2: true, h2: { maxResetsPerWindow: 50 } });
    app.get('/hello', () => 'hello');
    const { port } = await app.listen(0, '127.0.0.1');
    try {
      const attacker = new RawH2(port, { ca: cert });
      await attacker.settled();
      const burst: Buffer[] = [];
      for (let i = 0; i < 200; i++) burst.push(getRequest(1 + 2 * i, '/hello'), rstFrame(1 + 2 * i));
      attacker.write(Buffer.concat(burst));
      expect(await attacker.waitClosed(5000)).toBe(true);
      expect(attacker.goawayCode()).toBe(CALM);
      const session = await openSession(port, cert);
      try {
        expect(await h2request(session, { ':path': '/hello' })).toMatchObject({ status: 200, body: 'hello' });
      } finally {
        session.close();
      }
    } finally {
      await app.close({ deadline: 300 });
    }
  });

  it('closes a session that moves no bytes for socketTimeout, and keeps a busy one', async () => {
    const quiet = createServer({ http2: 'h2c', socketTimeout: 300 });
    quiet.get('/hello', () => 'hello');
    const { port: quietPort } = await quiet.listen(0, '127.0.0.1');
    try {
      const silent = new RawH2(quietPort);
      const busy = await openSession(quietPort);
      const started = Date.now();
      while (Date.now() - started < 900) {
        expect((await h2request(busy, { ':path': '/hello' })).status).toBe(200);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await silent.waitClosed(2000)).toBe(true);
      expect(busy.closed || busy.destroyed).toBe(false);
      busy.close();
    } finally {
      await quiet.close({ deadline: 300 });
    }
  });
});
