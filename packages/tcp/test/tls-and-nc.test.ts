import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, peerPath } from '../../../test-support/peers.js';
import { connect, createServer, lengthPrefixed, lines, type Server } from '../src/index.js';
import { within } from './helpers.js';

let dir: string | undefined;
let key: Buffer;
let cert: Buffer;
const servers: Server<any, any>[] = [];

/** A throwaway self-signed certificate (made by openssl, so only suites that declare it call this). */
function makeCertificate(): void {
  if (dir !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'net-tcp-tls-'));
  // A throwaway self-signed certificate for localhost and 127.0.0.1, valid for one day.
  execFileSync(
    peerPath('openssl'),
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-days',
      '1',
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

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describeWithPeers(['openssl'], 'TLS', () => {
  beforeAll(makeCertificate);

  it('echoes length-prefixed frames over TLS with the certificate verified via ca', async () => {
    const server = createServer({ codec: lengthPrefixed(), tls: { key, cert } }, async (conn) => {
      for await (const frame of conn) await conn.send(Buffer.concat([Buffer.from('tls:'), frame]));
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    for (const host of ['localhost', '127.0.0.1']) {
      const client = await connect({ host, port, codec: lengthPrefixed(), tls: { ca: cert } });
      expect(client.encrypted).toBe(true);
      const payload = Buffer.alloc(200_000, 5);
      await client.send('hello');
      await client.send(payload);
      const it = client[Symbol.asyncIterator]();
      expect(String((await it.next()).value)).toBe('tls:hello');
      const big = (await it.next()).value as Buffer;
      expect(big.length).toBe(payload.length + 4);
      await within(client.end(), 10_000, 'tls client end');
      expect(client.error).toBeUndefined();
    }
  });

  it('refuses a server certificate that is not trusted', async () => {
    const server = createServer({ codec: lines(), tls: { key, cert } }, () => {});
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    await expect(connect({ host: 'localhost', port, codec: lines(), tls: {} })).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
  });
});

describeWithPeers(['openssl'], 'interop with openssl s_client', () => {
  beforeAll(makeCertificate);

  it('serves a line protocol over TLS to a real OpenSSL client that verifies our certificate', async () => {
    const server = createServer({ codec: lines(), tls: { key, cert } }, (conn) => {
      conn.on('message', (line) => void conn.end(`> ${line.toUpperCase()}`));
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        peerPath('openssl'),
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-CAfile',
          join(dir!, 'cert.pem'),
          '-verify_return_error',
          '-quiet',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(killer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`s_client exited with ${code}: ${stderr}`));
      });
      child.stdin.write('hello over tls\n');
    });
    expect(out).toBe('> HELLO OVER TLS\n');
  });
});

/** Run `nc -N` with the given stdin; resolves with its stdout. Bounded by a kill timer. */
function nc(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(peerPath('nc'), ['-N', '-w', '10', '127.0.0.1', String(port)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(out);
      else reject(new Error(`nc exited with ${code}: ${err}`));
    });
    child.stdin.end(input);
  });
}

describeWithPeers(['nc'], 'interop with netcat (netcat-openbsd)', () => {
  it('serves lines typed into nc, with a greeting, CRLF tolerance and a final unterminated line', async () => {
    const received: string[] = [];
    const server = createServer({ codec: lines() }, (conn) => {
      conn.writeRaw('hello from @net/tcp\n');
      conn.on('message', (line) => {
        received.push(line);
        conn.write(`> ${line.toUpperCase()}`);
      });
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const out = await nc(port, 'first\nsecond line\r\nünïcödé ✓\nno newline at the end');
    expect(received).toEqual(['first', 'second line', 'ünïcödé ✓', 'no newline at the end']);
    expect(out).toBe('hello from @net/tcp\n> FIRST\n> SECOND LINE\n> ÜNÏCÖDÉ ✓\n> NO NEWLINE AT THE END\n');
  });

  it('reports ERR_LINE_TOO_LONG to an nc user and keeps the session going', async () => {
    const server = createServer(
      { codec: lines({ maxLineLength: 32 }), protocolErrors: 'continue' },
      (conn) => {
        conn.on('error', (error) => {
          if ((error as { code?: string }).code === 'ERR_LINE_TOO_LONG')
            conn.write('ERR line too long (max 32 bytes)');
        });
        conn.on('message', (line) => conn.write(`ok ${line}`));
      },
    );
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const out = await nc(port, `short\n${'x'.repeat(10_000)}\nafter\n`);
    expect(out).toBe('ok short\nERR line too long (max 32 bytes)\nok after\n');
  });

  it('ends an nc session gracefully by default on a protocol error, after writing the reason', async () => {
    const server = createServer({ codec: lines({ maxLineLength: 8 }) }, (conn) => {
      conn.on('error', (error) => conn.writeRaw(`ERR ${(error as { code?: string }).code}\n`));
      conn.on('message', (line) => conn.write(`ok ${line}`));
    });
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const out = await nc(port, 'a\nthis line is too long\nb\n');
    expect(out).toBe('ok a\nERR ERR_LINE_TOO_LONG\n');
  });

  it('closes only the connection whose listener throws', async () => {
    const server = createServer({ codec: lines() }, (conn) => {
      conn.on('message', (line) => {
        if (line === 'boom') throw new Error('listener bug');
        conn.write(`ok ${line}`);
      });
    });
    const errors: Error[] = [];
    server.on('connectionError', (e) => errors.push(e));
    servers.push(server);
    const { port } = await server.listen({ host: '127.0.0.1' });
    expect(await nc(port, 'a\nboom\nnever\n')).toBe('');
    expect(errors.map((e) => e.message)).toEqual(['listener bug']);
    expect(await nc(port, 'still up\n')).toBe('ok still up\n');
  });
});
