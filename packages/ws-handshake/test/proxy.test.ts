import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  bypassesProxy,
  ConnectResponseParser,
  connect,
  HandshakeTimeoutError,
  InvalidArgumentError,
  ProxyError,
  resolveProxy,
} from '../src/index.js';
import { withTimeout } from './helpers.js';

// The CONNECT response parser (sans-I/O, property-tested), proxy selection, and the client's
// handling of misbehaving proxies (raw loopback servers standing in for them).

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    parts.push(bytes.subarray(last, p));
    last = p;
  }
  parts.push(bytes.subarray(last));
  return parts;
}

function feed(parser: ConnectResponseParser, parts: Buffer[]): ReturnType<ConnectResponseParser['push']> {
  let result: ReturnType<ConnectResponseParser['push']> = null;
  for (const part of parts) {
    if (result !== null) break;
    result = parser.push(part);
  }
  return result;
}

describe('ConnectResponseParser', () => {
  const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
  const value = fc.stringMatching(/^[ -~]{0,40}$/).map((v) => v.trim());

  it('parses any status and headers the same under arbitrary chunking', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 599 }),
        fc.array(fc.tuple(token, value), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (status, headers, cuts) => {
          const head = `HTTP/1.1 ${status} Whatever\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
          const result = feed(new ConnectResponseParser(), splitAt(Buffer.from(head, 'latin1'), cuts));
          expect(result?.status).toBe(status);
          expect(result?.reason).toBe('Whatever');
          for (const [n] of headers) expect(result?.headers.has(n.toLowerCase())).toBe(true);
          if (headers.length > 0) {
            const [n] = headers.at(-1)!;
            const lastValue = [...headers].reverse().find(([k]) => k.toLowerCase() === n.toLowerCase())![1];
            expect(result?.headers.get(n.toLowerCase())).toBe(lastValue);
          }
          expect(result?.rest.length).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes never crash: a ProxyError, null (needs more), or a response; memory stays bounded', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 40 }), (chunks) => {
        const parser = new ConnectResponseParser(4096);
        try {
          for (const c of chunks) if (parser.push(Buffer.from(c)) !== null) return;
        } catch (error) {
          expect(error).toBeInstanceOf(ProxyError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects non-HTTP answers and heads over the limit; keeps bytes after the head', () => {
    expect(() => new ConnectResponseParser().push(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(
      ProxyError,
    );
    const small = new ConnectResponseParser(64);
    expect(() => small.push(Buffer.alloc(65, 'a'))).toThrow(/exceeds 64 bytes/);
    const r = new ConnectResponseParser().push(Buffer.from('HTTP/1.0 200 Connection established\r\n\r\nXY'));
    expect(r?.status).toBe(200);
    expect(r?.rest.toString()).toBe('XY');
  });
});

describe('proxy selection', () => {
  const ws = new URL('ws://chat.example.com:8080/');
  const wss = new URL('wss://api.example.org/');

  it('explicit URL, none, and invalid values', () => {
    expect(resolveProxy('http://p:3128', ws)?.host).toBe('p:3128');
    expect(resolveProxy(undefined, ws)).toBeNull();
    expect(resolveProxy(false, ws)).toBeNull();
    expect(() => resolveProxy('not a url', ws)).toThrow(InvalidArgumentError);
    expect(() => resolveProxy('socks5://p:1080', ws)).toThrow(/Only http: proxies/);
  });

  it("'env': HTTPS_PROXY for wss:, HTTP_PROXY for ws:, lower case first, NO_PROXY", () => {
    const saved = { ...process.env };
    try {
      for (const n of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
        delete process.env[n];
      }
      expect(resolveProxy('env', ws)).toBeNull();
      process.env.HTTP_PROXY = 'http://upper:1';
      process.env.HTTPS_PROXY = 'http://secure:2';
      expect(resolveProxy('env', ws)?.host).toBe('upper:1');
      expect(resolveProxy('env', wss)?.host).toBe('secure:2');
      process.env.http_proxy = 'http://lower:3';
      expect(resolveProxy('env', ws)?.host).toBe('lower:3');
      process.env.NO_PROXY = 'example.org';
      expect(resolveProxy('env', wss)).toBeNull();
      expect(resolveProxy('env', ws)?.host).toBe('lower:3');
    } finally {
      for (const n of ['http_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) delete process.env[n];
      Object.assign(process.env, saved);
    }
  });

  it('NO_PROXY entries: domains, leading dots and wildcards, ports, IPs, *', () => {
    expect(bypassesProxy(ws, 'example.com')).toBe(true);
    expect(bypassesProxy(ws, '.example.com')).toBe(true);
    expect(bypassesProxy(ws, '*.example.com')).toBe(true);
    expect(bypassesProxy(ws, 'ample.com')).toBe(false);
    expect(bypassesProxy(ws, 'example.com:8080')).toBe(true);
    expect(bypassesProxy(ws, 'example.com:9090')).toBe(false);
    expect(bypassesProxy(wss, 'api.example.org:443')).toBe(true);
    expect(bypassesProxy(new URL('ws://127.0.0.1:1/'), 'localhost,127.0.0.1')).toBe(true);
    expect(bypassesProxy(new URL('ws://[::1]:1/'), '[::1]')).toBe(true);
    expect(bypassesProxy(ws, '*')).toBe(true);
    expect(bypassesProxy(ws, '')).toBe(false);
    expect(bypassesProxy(ws, undefined)).toBe(false);
  });
});

describe('misbehaving proxies', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  async function fakeProxy(
    onConnect: (socket: net.Socket, head: string) => void,
  ): Promise<{ url: string; closed: Promise<void> }> {
    let onClosed!: () => void;
    const closed = new Promise<void>((r) => (onClosed = r));
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.on('close', onClosed);
      let head = '';
      socket.on('data', (d) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) onConnect(socket, head);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, closed };
  }

  it('sends CONNECT host:port with a Host header', async () => {
    let seen = '';
    const proxy = await fakeProxy((socket, head) => {
      seen = head;
      socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    const error = await connect('ws://[::1]:4567/x', { proxy: proxy.url }).catch((e) => e);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.status).toBe(502);
    expect(seen.startsWith('CONNECT [::1]:4567 HTTP/1.1\r\nHost: [::1]:4567\r\n')).toBe(true);
    expect(seen).not.toContain('Proxy-Authorization');
  });

  it('a proxy that never answers: handshake timeout, proxy socket closed', async () => {
    const proxy = await fakeProxy(() => {});
    const error = await connect('ws://127.0.0.1:9/', { proxy: proxy.url, timeout: 300 }).catch((e) => e);
    expect(error).toBeInstanceOf(HandshakeTimeoutError);
    await withTimeout(proxy.closed, 10_000, 'proxy socket closed');
  });

  it('abort while CONNECT is pending closes the proxy socket', async () => {
    const proxy = await fakeProxy(() => {});
    const controller = new AbortController();
    const pending = connect('ws://127.0.0.1:9/', { proxy: proxy.url, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(await pending.catch((e) => e)).toBeInstanceOf(AbortedError);
    await withTimeout(proxy.closed, 10_000, 'proxy socket closed');
  });

  it('garbage, an endless head, early close and bytes before the tunnel is used are ProxyErrors', async () => {
    const cases: Array<(socket: net.Socket) => void> = [
      (s) => s.end('220 smtp.example ESMTP\r\n\r\n'),
      (s) => s.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`),
      (s) => s.destroy(),
      (s) => s.write('HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n'),
    ];
    for (const behave of cases) {
      const proxy = await fakeProxy(behave);
      const error = await connect('ws://127.0.0.1:9/', { proxy: proxy.url, timeout: 5_000 }).catch((e) => e);
      expect(error).toBeInstanceOf(ProxyError);
      expect(error.code).toBe('ERR_WS_PROXY');
    }
  });

  it('an unreachable proxy is a ProxyError with the socket error as cause', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((r) => server.close(r));
    const error = await connect('ws://127.0.0.1:9/', { proxy: `http://127.0.0.1:${port}` }).catch((e) => e);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.status).toBeUndefined();
    expect(error.cause?.code).toBe('ECONNREFUSED');
  });
});
