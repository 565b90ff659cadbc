import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ConnectionOptions,
  connect,
  createServer,
  type Server,
  type TlsOptions,
  type TLSSocket,
} from 'node:tls';

export interface Served {
  server: Server;
  port: number;
  /** Errors the server saw on handshakes (tlsClientError). */
  clientErrors: Error[];
  /** Sockets that completed the handshake on the server side. */
  accepted: TLSSocket[];
  close(): Promise<void>;
}

/** A TLS server on 127.0.0.1:0 that greets each authenticated client with "hello\n". */
export async function serve(options: TlsOptions, { keepOpen = false } = {}): Promise<Served> {
  const clientErrors: Error[] = [];
  const accepted: TLSSocket[] = [];
  const server = createServer(options, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    if (keepOpen) socket.write('hello\n');
    else socket.end('hello\n');
  });
  // With a tlsClientError listener Node leaves the failed socket open: destroy it (as servers must).
  server.on('tlsClientError', (err, socket) => {
    clientErrors.push(err);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    clientErrors,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of accepted) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export type HandshakeResult =
  | {
      ok: true;
      greeting: string;
      socket: TLSSocket;
      protocol: string | null;
      cipher: string;
      peerFingerprint: string;
    }
  | { ok: false; error: NodeJS.ErrnoException };

/**
 * Connects and waits for the server's greeting: success means the server accepted us too (with
 * TLS 1.3 a client finishes its handshake before the server has judged the client certificate).
 */
export function handshake(
  port: number,
  options: ConnectionOptions,
  timeoutMs = 10_000,
): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const socket = connect({ port, host: '127.0.0.1', ...options });
    const done = (r: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: new Error('handshake timed out') }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) {
        done({
          ok: true,
          greeting: data,
          socket,
          protocol: socket.getProtocol(),
          cipher: socket.getCipher().name,
          peerFingerprint: socket.getPeerCertificate().fingerprint256,
        });
      }
    });
    socket.on('error', (error) => done({ ok: false, error }));
    socket.on('close', () =>
      done({ ok: false, error: Object.assign(new Error('closed without greeting'), { code: 'ECLOSED' }) }),
    );
  });
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with stdin closed and a hard timeout. */
export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout
      .setEncoding('utf8')
      .on('data', (d: string) => (stdout += d.length + stdout.length > 1e6 ? '' : d));
    child.stderr
      .setEncoding('utf8')
      .on('data', (d: string) => (stderr += d.length + stderr.length > 1e6 ? '' : d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'net-security-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
