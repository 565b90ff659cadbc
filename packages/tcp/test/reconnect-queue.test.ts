import { Buffer } from 'node:buffer';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, lengthPrefixed, lines, ReconnectingClient, type Server } from '../src/index.js';
import { sleep, waitFor, within } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((fn) => fn()));
});

/** A port nothing listens on (for now). */
async function freePort(): Promise<number> {
  const probe = createServer({ codec: lines() });
  const { port } = await probe.listen({ host: '127.0.0.1' });
  await probe.close({ deadline: 0 });
  return port;
}

/**
 * A 3,000-byte message whose user text holds a complete length-prefixed frame `EVIL`: if the
 * stream ever loses its framing, the server decodes that text as a frame of its own.
 */
function message(index: number): Buffer {
  const payload = Buffer.alloc(3_000, 0x61 + index);
  for (let at = 0; at + 8 <= payload.length; at += 8) {
    payload.writeUInt32BE(4, at);
    payload.write('EVIL', at + 4, 'latin1');
  }
  payload[0] = index;
  return payload;
}

describe('reconnecting client: offline queue flush', () => {
  it('writes every queued message whole and in order when they exceed maxPendingBytes together', async () => {
    const port = await freePort();
    const client = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lengthPrefixed(),
      maxPendingBytes: 10_000,
      offlineQueue: { maxBytes: 64 * 1024 },
      initialDelay: 20,
      maxDelay: 100,
    });
    cleanup.push(() => client.close());
    const sent = Array.from({ length: 6 }, (_, i) => message(i));
    const settled: (string | undefined)[] = new Array(6).fill(undefined);
    sent.forEach((m, i) => {
      void client.send(m).then(
        () => {
          settled[i] = 'resolved';
        },
        (error: Error) => {
          settled[i] = `rejected ${error.message}`;
        },
      );
    });
    expect(client.queuedMessages).toBe(6);
    await sleep(50);
    // Nothing was handed to a socket yet, so no send may have resolved.
    expect(settled).toEqual(new Array(6).fill(undefined));

    const received: Buffer[] = [];
    const server: Server<Buffer, Uint8Array | string> = createServer({ codec: lengthPrefixed() }, (conn) => {
      conn.on('message', (frame) => received.push(Buffer.from(frame)));
    });
    cleanup.push(() => server.close({ deadline: 0 }));
    await server.listen({ host: '127.0.0.1', port });
    await within(client.opened(), 15_000, 'open');
    await within(client.send(message(6)), 10_000, 'send after open');
    await waitFor(() => received.length >= 7, 10_000, 'seven frames');
    await sleep(100); // any extra (injected) frame would arrive now
    expect(received.map((f) => f.toString('latin1').includes('EVIL') && f.length)).toEqual(
      new Array(7).fill(3_000),
    );
    expect(received).toEqual([...sent, message(6)]);
    expect(settled).toEqual(new Array(6).fill('resolved'));
    expect(client.queuedMessages).toBe(0);
  });

  it('rejects queued sends when the client is closed before they were written', async () => {
    const port = await freePort();
    const client = new ReconnectingClient({ port, host: '127.0.0.1', codec: lines(), initialDelay: 20 });
    const pending = client.send('never written');
    let done = false;
    pending.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await sleep(50);
    expect(done).toBe(false);
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });

  it('refuses to queue a single message larger than maxPendingBytes', async () => {
    const port = await freePort();
    const client = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lengthPrefixed(),
      maxPendingBytes: 1_000,
      initialDelay: 20,
    });
    cleanup.push(() => client.close());
    await expect(client.send(Buffer.alloc(2_000))).rejects.toMatchObject({
      code: 'ERR_PENDING_BYTES_EXCEEDED',
    });
    expect(client.queuedMessages).toBe(0);
  });
});
