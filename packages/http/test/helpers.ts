import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerPath } from '../../../test-support/peers.js';

export interface RawResult {
  /** Everything the server sent, as latin1 text. */
  data: string;
  /** True when the server closed (FIN or reset) before our own timeout. */
  closed: boolean;
  /** Milliseconds from connect until close (or timeout). */
  elapsed: number;
}

/**
 * Writes `chunks` (strings or buffers, with optional pauses given as numbers of ms) to a fresh
 * loopback socket and collects the reply until the server closes or `timeout` ms pass.
 */
export function raw(port: number, chunks: (string | Buffer | number)[], timeout = 5000): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    const started = Date.now();
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(received).toString('latin1'), closed, elapsed: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), timeout);
    socket.on('data', (d) => received.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.once('connect', async () => {
      for (const chunk of chunks) {
        if (done || socket.destroyed) return;
        if (typeof chunk === 'number') await new Promise((r) => setTimeout(r, chunk));
        else socket.write(chunk);
      }
    });
  });
}

/** Status code of the first response in a raw reply, or 0. */
export function statusOf(data: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
  return m ? Number(m[1]) : 0;
}

/** A throwaway self-signed certificate for 127.0.0.1 / localhost, made with openssl (declare the peer). */
export function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'net-http-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
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
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}
