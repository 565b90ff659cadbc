import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { openDevCA } from '@net/security';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itWithPeers, peerPath } from '../../../test-support/peers.js';
import { waitFor } from './helpers/clients.js';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';
import { execFileSync } from 'node:child_process';

// Issue 16, "TLS mode".

function httpsCall(
  url: string,
  ca: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca, agent: false, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(options.body);
  });
}

/** A line client over TLS that trusts the dev CA. */
async function tlsLines(port: number, ca: string) {
  const lines: string[] = [];
  let buf = '';
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  socket.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i !== -1) {
      lines.push(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  socket.on('error', () => {});
  await waitFor('welcome over TLS', () => lines.some((l) => /you joined #lobby/.test(l)));
  return { lines, send: (l: string) => socket.write(`${l}\n`), close: () => socket.destroy() };
}

describe('--tls: /token over TLS and a name-constrained, short-lived dev CA', () => {
  let server: RunningServer;
  let ca: string;
  beforeAll(async () => {
    server = await startServer({
      args: ['--tls', '--host-name', 'chat.example', '--max-conns-per-address', '3'],
    });
    ca = readFileSync(server.caPath!, 'utf8');
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  it('issues a /token on the TLS line listener that works for HTTPS posts', async () => {
    const c = await tlsLines(server.port('tls'), ca);
    c.send('/nick tlsuser');
    c.send('/token');
    const line = await waitFor('token line', () => c.lines.find((l) => /^\* token for tlsuser: /.test(l)));
    const token = line.split(': ')[1]!;
    const res = await httpsCall(`${server.urls.https}/api/rooms/lobby/messages`, ca, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'posted with a TLS token' }),
    });
    expect(res.status).toBe(201);
    c.close();
  });

  it('caps TLS line and HTTPS connections per address', async () => {
    const held = [
      await tlsLines(server.port('tls'), ca),
      await tlsLines(server.port('tls'), ca),
      await tlsLines(server.port('tls'), ca),
    ];
    const over = tlsConnect({ host: '127.0.0.1', port: server.port('tls'), ca, servername: 'localhost' });
    let text = '';
    over.setEncoding('utf8').on('data', (d: string) => (text += d));
    over.on('error', () => {});
    await new Promise<void>((r) => over.on('close', () => r()));
    expect(text).toMatch(/^! TOO_MANY_CONNECTIONS: /m);
    for (const c of held) c.close();

    const port = server.port('https');
    const request = () =>
      new Promise<{ status: number; socket: ReturnType<typeof tlsConnect> }>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
        let buf = '';
        socket.setEncoding('latin1').on('data', (d: string) => {
          buf += d;
          if (buf.includes('\r\n\r\n')) resolve({ status: Number(buf.slice(9, 12)), socket });
        });
        socket.on('error', reject);
        socket.on('secureConnect', () =>
          socket.write(`GET /healthz HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`),
        );
      });
    const ok = [await request(), await request(), await request()];
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    const refused = await request();
    expect(refused.status).toBe(503);
    for (const r of [...ok, refused]) r.socket.destroy();
  });

  it('gives the dev CA a life of at most 90 days', () => {
    const cert = new X509Certificate(ca);
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeLessThanOrEqual(91);
    expect(days).toBeGreaterThan(30);
  });

  itWithPeers(['openssl'], 'puts name constraints on the dev CA: localhost, loopback and --host-name', () => {
    const text = execFileSync(peerPath('openssl'), ['x509', '-noout', '-text', '-in', server.caPath!], {
      encoding: 'utf8',
    });
    expect(text).toMatch(/X509v3 Name Constraints: critical/);
    expect(text).toMatch(/DNS:localhost/);
    expect(text).toMatch(/DNS:chat\.example/);
    expect(text).toMatch(/IP:127\.0\.0\.0\/255\.0\.0\.0/);
  });
});

describe('--tls-only', () => {
  let server: RunningServer;
  let ca: string;
  let redirectPort: number;
  beforeAll(async () => {
    server = await startServer({ args: ['--tls-only'] });
    ca = readFileSync(server.caPath!, 'utf8');
    redirectPort = Number(/^redirecting http http:\/\/[^:]+:(\d+)$/m.exec(server.stdout())![1]);
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  it('has no plain TCP or plain HTTP chat listener', () => {
    expect(Object.keys(server.urls).sort()).toEqual(['https', 'tls', 'udp']);
  });

  it('plain HTTP only redirects to HTTPS, for every path and for /ws', async () => {
    const raw = (lines: string[]) =>
      new Promise<string>((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port: redirectPort });
        let text = '';
        s.setEncoding('latin1').on('data', (d: string) => (text += d));
        s.on('error', reject);
        s.on('end', () => resolve(text));
        s.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`);
      });
    const page = await raw(['GET /api/rooms?x=1 HTTP/1.1', `Host: localhost:${redirectPort}`]);
    expect(page).toMatch(/^HTTP\/1\.1 308 /);
    expect(page).toMatch(
      new RegExp(`\\r\\nlocation: https://localhost:${server.port('https')}/api/rooms\\?x=1\\r\\n`, 'i'),
    );
    const ws = await raw([
      'GET /ws HTTP/1.1',
      `Host: 127.0.0.1:${redirectPort}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ]);
    expect(ws).not.toMatch(/^HTTP\/1\.1 101/);
    const evil = await raw(['GET / HTTP/1.1', 'Host: rebind.attacker.example']);
    expect(evil).toMatch(/^HTTP\/1\.1 421 /);
  });

  it('sends HSTS on HTTPS', async () => {
    const res = await httpsCall(`${server.urls.https}/healthz`, ca);
    expect(res.status).toBe(200);
    expect(res.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
  });
});

describe('an older dev CA without name constraints', () => {
  it('is retired and replaced by a constrained one', async () => {
    const dataDir = tempDir('chat-oldca-');
    const old = await openDevCA({ dir: join(dataDir, 'ca'), name: 'net-chat dev CA' });
    const server = await startServer({ dataDir, args: ['--tls'] });
    try {
      const now = readFileSync(server.caPath!, 'utf8');
      expect(now).not.toBe(old.caCert);
      expect(readdirSync(dataDir).some((f) => f.startsWith('ca.retired-'))).toBe(true);
      expect(existsSync(join(dataDir, 'ca', 'constraints.json'))).toBe(true);
      expect(server.stderr()).toMatch(/dev CA replaced/);
    } finally {
      await server.stop('SIGKILL');
    }
  });
});
