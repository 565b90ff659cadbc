import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers, peerPath, skipTest } from '../../../test-support/peers.js';
import { connect, createWebSocketServer, type WebSocketServer } from '../src/index.js';

// wss: with a throwaway certificate trusted through `ca`, and plain ws: over IPv6 loopback.

let dir: string | undefined;
let key: Buffer;
let cert: Buffer;
/** A throwaway certificate made by openssl (the suite that calls this declares the peer). */
function makeCertificate(): void {
  dir = mkdtempSync(join(tmpdir(), 'ws-tls-'));
  execFileSync(
    peerPath('openssl'),
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
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
  key = readFileSync(join(dir, 'key.pem'));
  cert = readFileSync(join(dir, 'cert.pem'));
}
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describeWithPeers(['openssl'], 'wss:', () => {
  let server: WebSocketServer;
  beforeAll(async () => {
    makeCertificate();
    server = await createWebSocketServer({
      tls: { key, cert },
      heartbeatInterval: 0,
      perMessageDeflate: true,
    });
    server.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
  });
  afterAll(async () => {
    await server.close();
  });

  it('connects with the certificate trusted via ca and echoes (deflate on)', async () => {
    expect(server.url).toMatch(/^wss:\/\/127\.0\.0\.1:/);
    const ws = await connect(`wss://localhost:${server.port}`, {
      tls: { ca: cert },
      perMessageDeflate: true,
    });
    expect(ws.extensions).toMatch(/permessage-deflate/);
    const reply = new Promise((r) => ws.once('message', r));
    await ws.send('over tls '.repeat(500));
    expect(await reply).toBe('over tls '.repeat(500));
    await ws.close();
    expect(ws.closeCode).toBe(1000);
  });

  it('refuses an untrusted certificate', async () => {
    const e = (await connect(`wss://localhost:${server.port}`).catch((x: unknown) => x)) as {
      code: string;
      cause: Error;
    };
    expect(e.code).toBe('ERR_WS_SOCKET');
    expect(String(e.cause)).toMatch(/self[- ]signed|certificate/i);
  });
});

describe('IPv6 loopback', () => {
  it('serves and connects over [::1]', async (ctx) => {
    let server: WebSocketServer;
    try {
      server = await createWebSocketServer({ host: '::1', heartbeatInterval: 0 });
    } catch (error) {
      // Only a host without IPv6 is a reason to skip; any other failure is a failure.
      const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      const code = e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT' ? e.code : e.cause?.code;
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')
        skipTest(ctx, `no IPv6 loopback here (${code})`);
      throw error;
    }
    server.on('connection', (ws) => ws.send('hello v6'));
    expect(server.url).toMatch(/^ws:\/\/\[::1\]:/);
    const ws = await connect(server.url!);
    expect(await new Promise((r) => ws.once('message', r))).toBe('hello v6');
    await ws.close();
    await server.close();
  });
});
