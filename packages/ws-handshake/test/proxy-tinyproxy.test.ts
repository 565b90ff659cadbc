import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import {
  BrowserWebSocket,
  connect,
  createWebSocketServer,
  ProxyError,
  SocketError,
  type WebSocketServer,
} from '../src/index.js';
import { withTimeout } from './helpers.js';

// ws: and wss: through Debian's tinyproxy (HTTP CONNECT), started here on free loopback ports:
// an open proxy, one that requires Basic auth, and refusals (403, 407, 401).

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Proxy {
  url: string;
  port: number;
  log: string;
  child: ChildProcess;
}

/** Start tinyproxy in the foreground with its own config; retried on a port race. */
async function startTinyproxy(dir: string, name: string, connectPorts: number[], extra = ''): Promise<Proxy> {
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const log = join(dir, `${name}.log`);
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      [
        `Port ${port}`,
        'Listen 127.0.0.1',
        'Timeout 30',
        'MaxClients 20',
        'Allow 127.0.0.1',
        ...connectPorts.map((p) => `ConnectPort ${p}`),
        `LogFile "${log}"`,
        'LogLevel Info',
        extra,
        '',
      ].join('\n'),
    );
    const child = spawn(peerPath('tinyproxy'), ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += d));
    const started = Date.now();
    while (Date.now() - started < 5_000 && child.exitCode === null) {
      if (await canConnect(port)) return { url: `http://127.0.0.1:${port}`, port, log, child };
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    lastError = `exit ${child.exitCode}: ${stderr}`;
  }
  throw new Error(`tinyproxy did not start (${lastError})`);
}

function stop(proxy: Proxy | undefined): Promise<void> {
  if (proxy === undefined || proxy.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proxy.child.kill('SIGKILL'), 3_000);
    proxy.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proxy.child.kill('SIGTERM');
  });
}

async function echoOnce(ws: Awaited<ReturnType<typeof connect>>, text: string): Promise<unknown> {
  const reply = new Promise((resolve) => ws.once('message', resolve));
  await ws.send(text);
  return withTimeout(reply, 10_000, 'echo');
}

describeWithPeers(['tinyproxy', 'openssl'], 'through tinyproxy (HTTP CONNECT)', () => {
  let dir: string;
  let plain: WebSocketServer;
  let secure: WebSocketServer;
  let unlisted: WebSocketServer;
  let cert: Buffer;
  let open: Proxy;
  let authed: Proxy;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ws-proxy-'));
    execFileSync(
      peerPath('openssl'),
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    const key = readFileSync(join(dir, 'key.pem'));
    const echo = (server: WebSocketServer): WebSocketServer => {
      server.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b }).catch(() => {})));
      return server;
    };
    plain = echo(await createWebSocketServer({ heartbeatInterval: 0 }));
    secure = echo(await createWebSocketServer({ heartbeatInterval: 0, tls: { key, cert } }));
    unlisted = echo(await createWebSocketServer({ heartbeatInterval: 0 }));
    open = await startTinyproxy(dir, 'open', [plain.port!, secure.port!]);
    authed = await startTinyproxy(dir, 'auth', [plain.port!], 'BasicAuth net.user pa-ss_1');
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stop(open), stop(authed)]);
    await Promise.all([plain?.close(), secure?.close(), unlisted?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ws: through the proxy (the proxy logs the CONNECT)', async () => {
    const ws = await connect(`ws://127.0.0.1:${plain.port}/chat`, { proxy: open.url });
    expect(await echoOnce(ws, 'via proxy')).toBe('via proxy');
    await ws.close();
    expect(readFileSync(open.log, 'utf8')).toContain(`CONNECT 127.0.0.1:${plain.port}`);
  });

  it('wss: TLS to the origin inside the tunnel, certificate checked', async () => {
    const ws = await connect(`wss://127.0.0.1:${secure.port}/`, { proxy: open.url, tls: { ca: cert } });
    expect(await echoOnce(ws, 'secret')).toBe('secret');
    await ws.close();
    expect(readFileSync(open.log, 'utf8')).toContain(`CONNECT 127.0.0.1:${secure.port}`);
    // Without the CA the origin's certificate is rejected, tunnel or not.
    const error = await connect(`wss://127.0.0.1:${secure.port}/`, { proxy: open.url }).catch((e) => e);
    expect(error).toBeInstanceOf(SocketError);
    expect(String(error.cause?.code)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
  });

  it('a CONNECT to a port the proxy does not allow fails with ProxyError status 403', async () => {
    const error = await connect(`ws://127.0.0.1:${unlisted.port}/`, { proxy: open.url }).catch((e) => e);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('ERR_WS_PROXY');
    expect(error.status).toBe(403);
    expect(error.message).toContain('403');
  });

  it('Basic auth from the proxy URL userinfo; without it the refusal carries the status (407)', async () => {
    const refused = await connect(`ws://127.0.0.1:${plain.port}/`, { proxy: authed.url }).catch((e) => e);
    expect(refused).toBeInstanceOf(ProxyError);
    expect(refused.status).toBe(407);
    const wrong = await connect(`ws://127.0.0.1:${plain.port}/`, {
      proxy: `http://net.user:nope@127.0.0.1:${authed.port}`,
    }).catch((e) => e);
    // tinyproxy answers wrong credentials with 401 rather than 407.
    expect(wrong).toBeInstanceOf(ProxyError);
    expect(wrong.status).toBe(401);
    // Userinfo is percent-decoded before encoding (%2D is '-').
    const ws = await connect(`ws://127.0.0.1:${plain.port}/`, {
      proxy: `http://net.user:pa%2Dss_1@127.0.0.1:${authed.port}`,
    });
    expect(await echoOnce(ws, 'authorized')).toBe('authorized');
    await ws.close();
  });

  it("proxy: 'env' reads HTTP_PROXY / HTTPS_PROXY and honours NO_PROXY", async () => {
    const saved = { ...process.env };
    try {
      for (const name of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
        delete process.env[name];
      }
      process.env.HTTP_PROXY = authed.url; // no credentials: this proxy refuses with 407
      const viaEnv = await connect(`ws://127.0.0.1:${plain.port}/`, { proxy: 'env' }).catch((e) => e);
      expect(viaEnv).toBeInstanceOf(ProxyError);
      expect(viaEnv.status).toBe(407);
      process.env.NO_PROXY = 'localhost, 127.0.0.1';
      const direct = await connect(`ws://127.0.0.1:${plain.port}/`, { proxy: 'env' });
      expect(await echoOnce(direct, 'direct')).toBe('direct');
      await direct.close();
      delete process.env.NO_PROXY;
      process.env.HTTPS_PROXY = open.url;
      const before = readFileSync(open.log, 'utf8').split(`CONNECT 127.0.0.1:${secure.port}`).length;
      const tunnelled = await connect(`wss://127.0.0.1:${secure.port}/`, { proxy: 'env', tls: { ca: cert } });
      expect(await echoOnce(tunnelled, 'env wss')).toBe('env wss');
      await tunnelled.close();
      expect(readFileSync(open.log, 'utf8').split(`CONNECT 127.0.0.1:${secure.port}`).length).toBe(
        before + 1,
      );
    } finally {
      for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('BrowserWebSocket takes the proxy option too', async () => {
    const ws = new BrowserWebSocket(`ws://127.0.0.1:${plain.port}/b`, [], { proxy: open.url });
    const reply = withTimeout(
      new Promise<unknown>((resolve, fail) => {
        ws.onopen = () => ws.send('browser via proxy');
        ws.onmessage = (e) => resolve((e as MessageEvent).data);
        ws.onclose = () => fail(new Error('closed'));
      }),
      10_000,
      'browser echo',
    );
    expect(await reply).toBe('browser via proxy');
    ws.onclose = null;
    ws.close();
    const refused = new BrowserWebSocket(`ws://127.0.0.1:${unlisted.port}/`, [], { proxy: open.url });
    const error = await withTimeout(
      new Promise<unknown>((resolve) =>
        refused.addEventListener('error', (e) => resolve((e as { error?: unknown }).error)),
      ),
      10_000,
      'error event',
    );
    expect(error).toBeInstanceOf(ProxyError);
  });
});
