import { afterEach, describe, expect, it } from 'vitest';
import {
  createServer,
  lines,
  ReconnectingClient,
  type ReconnectState,
  type RetryInfo,
  type Server,
} from '../src/index.js';
import { waitFor, within } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((fn) => fn()));
});

function echoServer(received: string[]): Server<string, string | Uint8Array> {
  const server = createServer({ codec: lines() }, (conn) => {
    conn.on('message', (line) => {
      received.push(line);
      conn.write(`echo ${line}`);
    });
  });
  cleanup.push(() => server.close({ deadline: 0 }));
  return server;
}

describe('reconnecting client', () => {
  it('reconnects after a server restart and flushes messages queued while offline, in order', async () => {
    const first: string[] = [];
    const server1 = echoServer(first);
    const { port } = await server1.listen({ host: '127.0.0.1' });

    const client = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lines(),
      initialDelay: 50,
      maxDelay: 200,
    });
    cleanup.push(() => client.close());
    const states: ReconnectState[] = [];
    client.on('state', (s) => states.push(s));
    const echoes: string[] = [];
    client.on('message', (m) => echoes.push(m));

    await within(client.opened(), 10_000, 'first open');
    await client.send('before restart');
    await waitFor(() => first.length === 1);

    await server1.close({ deadline: 0 });
    await waitFor(
      () => client.state === 'waiting' || client.state === 'connecting',
      10_000,
      'disconnect noticed',
    );
    // Queued sends resolve only once written to the next connection.
    const queued = [client.send('queued 1'), client.send('queued 2')];
    expect(client.queuedMessages).toBe(2);

    const second: string[] = [];
    const server2 = echoServer(second);
    await server2.listen({ host: '127.0.0.1', port });
    await within(client.opened(), 15_000, 'reopen');
    await within(Promise.all(queued), 10_000, 'queued sends resolve');
    await client.send('after restart');
    await waitFor(() => second.length === 3, 10_000, 'queued + new messages');
    expect(second).toEqual(['queued 1', 'queued 2', 'after restart']);
    await waitFor(() => echoes.length === 4);
    expect(echoes).toEqual(['echo before restart', 'echo queued 1', 'echo queued 2', 'echo after restart']);
    expect(states.slice(0, 3)).toEqual(['open', 'waiting', 'connecting']);
    expect(states.at(-1)).toBe('open');
  });

  it('backs off exponentially with jitter and gives up after maxAttempts', async () => {
    const probe = echoServer([]);
    const { port } = await probe.listen({ host: '127.0.0.1' });
    await probe.close({ deadline: 0 }); // nothing listens on `port` now

    const client = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lines(),
      initialDelay: 20,
      factor: 2,
      maxDelay: 100,
      jitter: 0.5,
      maxAttempts: 5,
    });
    cleanup.push(() => client.close());
    const retries: RetryInfo[] = [];
    client.on('reconnecting', (info) => retries.push(info));
    const errors: string[] = [];
    client.on('error', (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message));
    const closed = new Promise<Error | undefined>((resolve) => client.once('close', resolve));
    const error = await within(closed, 15_000, 'give up');

    expect(error).toMatchObject({ code: 'ERR_RECONNECT_FAILED', attempts: 5 });
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
    expect(errors).toEqual(Array(5).fill('ECONNREFUSED'));
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    const caps = [20, 40, 80, 100];
    retries.forEach((r, i) => {
      expect(r.delay).toBeLessThanOrEqual(caps[i]!);
      expect(r.delay).toBeGreaterThanOrEqual(Math.floor(caps[i]! / 2));
    });
    expect(client.state).toBe('closed');
    await expect(client.send('x')).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });

  it('bounds the offline queue and can run without one', async () => {
    const probe = echoServer([]);
    const { port } = await probe.listen({ host: '127.0.0.1' });
    await probe.close({ deadline: 0 });

    const queued = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lines(),
      offlineQueue: { maxMessages: 2, maxBytes: 1024 },
    });
    cleanup.push(() => queued.close());
    void queued.send('one');
    void queued.send('two');
    await expect(queued.send('three')).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' });

    const bytes = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lines(),
      offlineQueue: { maxBytes: 10 },
    });
    cleanup.push(() => bytes.close());
    await expect(bytes.send('this is more than ten bytes')).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' });

    const none = new ReconnectingClient({ port, host: '127.0.0.1', codec: lines(), offlineQueue: false });
    cleanup.push(() => none.close());
    await expect(none.send('x')).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
  });

  it('iterates messages across reconnections until closed', async () => {
    const server1 = createServer({ codec: lines() }, (conn) => {
      conn.write('from first');
      void conn.end();
    });
    cleanup.push(() => server1.close({ deadline: 0 }));
    const { port } = await server1.listen({ host: '127.0.0.1' });
    const client = new ReconnectingClient({
      port,
      host: '127.0.0.1',
      codec: lines(),
      initialDelay: 20,
      stableAfter: 0,
    });
    cleanup.push(() => client.close());
    const got: string[] = [];
    for await (const line of client) {
      got.push(line);
      if (got.length === 2) void client.close();
    }
    expect(got).toEqual(['from first', 'from first']);
  });
});
