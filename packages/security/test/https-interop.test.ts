import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptions, type DevCA, type DevCertificate, openDevCA, serverOptions } from '../src/index.js';
import { describeWithPeers, itWithPeers, peerPath } from '../../../test-support/peers.js';
import { run, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let ca: DevCA;
let site: DevCertificate;
let server: https.Server;
let port: number;
// The control for the protocol-version refusal: Node's default minimum is already TLS 1.2, so a
// server that explicitly allows TLS 1.0 (at SECLEVEL 0, which OpenSSL 3 needs for it) must accept
// the same curl probe that serverOptions() refuses.
let legacy: https.Server;
let legacyPort: number;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  ca = await openDevCA({ dir: join(dir, 'ca') });
  site = await ca.certificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  server = https.createServer(serverOptions(site), (_req, res) => res.end('hello over TLS\n'));
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  legacy = https.createServer(
    { cert: site.cert, key: site.key, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' },
    (_req, res) => res.end('hello over old TLS\n'),
  );
  await new Promise<void>((resolve) => legacy.listen(0, '127.0.0.1', resolve));
  legacyPort = (legacy.address() as AddressInfo).port;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  legacy?.closeAllConnections();
  await new Promise((resolve) => legacy?.close(resolve));
  await cleanup?.();
});

describeWithPeers(['curl'], 'HTTPS with a dev CA, seen by curl', () => {
  const url = () => `https://localhost:${port}/`;
  const resolve = () => `localhost:${port}:127.0.0.1`;

  it('succeeds when curl trusts the dev CA file', async () => {
    const r = await run(peerPath('curl'), [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      ca.caCertPath,
      '--resolve',
      resolve(),
      url(),
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello over TLS\n');
  });

  it('succeeds by IP address thanks to the IP SAN', async () => {
    const r = await run(peerPath('curl'), [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      ca.caCertPath,
      `https://127.0.0.1:${port}/`,
    ]);
    expect(r.stdout).toBe('hello over TLS\n');
  });

  it('fails certificate verification without the CA (curl exit 60)', async () => {
    const r = await run(peerPath('curl'), ['-sS', '--max-time', '10', '--resolve', resolve(), url()]);
    expect(r.code).toBe(60);
  });

  it('is refused when curl is limited to TLS 1.1 (which a server allowing TLSv1 accepts)', async () => {
    const oldTls = (p: number) =>
      run(peerPath('curl'), [
        '-sS',
        '--max-time',
        '10',
        '--cacert',
        ca.caCertPath,
        '--resolve',
        `localhost:${p}:127.0.0.1`,
        '--tlsv1.0',
        '--tls-max',
        '1.1',
        '--ciphers',
        'DEFAULT:@SECLEVEL=0',
        `https://localhost:${p}/`,
      ]);
    const control = await oldTls(legacyPort);
    expect(control.stderr).toBe('');
    expect(control.stdout).toBe('hello over old TLS\n');

    const r = await oldTls(port);
    expect(r.code).toBe(35); // SSL connect error
    expect(r.stdout).toBe('');
  });

  itWithPeers(['openssl'], 'writes the CA file curl and browsers can import', async () => {
    const copy = join(dir, 'copy.pem');
    await writeFile(copy, ca.caCert);
    const r = await run(peerPath('openssl'), ['verify', '-CAfile', copy, site.certPath]);
    expect(r.stdout).toMatch(/: OK/);
  });
});

describe('Node clients', () => {
  it('https.get with clientOptions and a CA pin', async () => {
    const { spkiPin } = await import('../src/index.js');
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        {
          ...clientOptions({ ca: ca.caCert, servername: 'localhost', pins: [spkiPin(ca.caCert)] }),
          host: '127.0.0.1',
          port,
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8').on('data', (d: string) => (data += d));
          res.on('end', () => resolve(data));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    expect(body).toBe('hello over TLS\n');
  });

  it('HTTP/2 over serverOptions and clientOptions', async () => {
    const h2 = http2.createSecureServer(serverOptions(site), (_req, res) => res.end('h2 ok'));
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    try {
      const client = http2.connect(`https://localhost:${(h2.address() as AddressInfo).port}`, {
        ...clientOptions({ ca: ca.caCert, servername: 'localhost' }),
        host: '127.0.0.1',
      });
      const body = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timeout')), 10_000);
        client.on('error', reject);
        const req = client.request({ ':path': '/' });
        let data = '';
        req.setEncoding('utf8').on('data', (d: string) => (data += d));
        req.on('end', () => {
          clearTimeout(timer);
          resolve(data);
        });
        req.on('error', reject);
      });
      client.close();
      expect(body).toBe('h2 ok');
    } finally {
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});
