import { afterAll, describe, expect, it } from 'vitest';
import { WsTestClient } from './helpers/clients.js';
import { type RunningServer, startServer, tempDir } from './helpers/server.js';

const servers: RunningServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop('SIGKILL');
});

describe('crash safety', () => {
  it('keeps all 1,000 acknowledged messages, in order, without duplicates, across kill -9', async () => {
    const dataDir = tempDir('chat-crash-');
    // The rate limit is lifted for this test: it is about durability, not fairness.
    const args = ['--rate', '100000', '--burst', '100000'];
    const first = await startServer({ dataDir, args });
    servers.push(first);
    const c = await WsTestClient.open(first.urls.http!, { nick: 'writer', room: 'lobby' });
    const acked = new Map<string, string>();
    const N = 1000;
    // Pipelined in windows of 100 so group commit gets exercised, not one fsync per round trip.
    for (let start = 0; start < N; start += 100) {
      for (let i = start; i < start + 100; i++)
        c.send({ type: 'send', room: 'lobby', text: `msg ${i}`, ref: String(i) });
      await c.next('ack', (f) => f.ref === String(start + 99), 0, 30_000);
    }
    for (const f of c.frames) if (f.type === 'ack') acked.set(f.ref as string, f.id as string);
    expect(acked.size).toBe(N);
    expect(c.frames.filter((f) => f.type === 'error')).toEqual([]);

    // Then crash in the middle of a burst: whatever was acknowledged must survive too.
    const burstFrom = c.frames.length;
    for (let i = N; i < N + 300; i++)
      c.send({ type: 'send', room: 'lobby', text: `msg ${i}`, ref: String(i) });
    await c.next('ack', () => true, burstFrom, 30_000);
    const exited = new Promise((r) => first.proc.once('exit', r));
    first.proc.kill('SIGKILL');
    await exited;
    for (const f of c.frames) if (f.type === 'ack') acked.set(f.ref as string, f.id as string);

    const second = await startServer({ dataDir, args });
    servers.push(second);
    const res = await fetch(`${second.urls.http}/api/rooms/lobby/messages?after=0-0&limit=1000`);
    const body = (await res.json()) as { messages: { id: string; text: string }[]; truncated: boolean };
    const texts = body.messages.map((m) => m.text);
    expect(texts).toEqual(Array.from({ length: N }, (_, i) => `msg ${i}`));
    expect(new Set(body.messages.map((m) => m.id)).size).toBe(N);
    for (let i = 0; i < N; i++) expect(body.messages[i]!.id).toBe(acked.get(String(i)));

    // The burst: a prefix of it was stored (the log is append-only), containing every acked one.
    const rest = await fetch(
      `${second.urls.http}/api/rooms/lobby/messages?after=${acked.get(String(N - 1))}&limit=1000`,
    );
    const tail = ((await rest.json()) as { messages: { id: string; text: string }[] }).messages;
    expect(tail.map((m) => m.text)).toEqual(Array.from({ length: tail.length }, (_, i) => `msg ${N + i}`));
    for (const [ref, id] of acked) {
      if (Number(ref) >= N) expect(tail[Number(ref) - N]?.id).toBe(id);
    }

    // And the ids keep increasing after the restart.
    const d = await WsTestClient.open(second.urls.http!, { nick: 'after', room: 'lobby' });
    d.send({ type: 'send', room: 'lobby', text: 'after restart', ref: 'z' });
    const ack = await d.next('ack');
    const [ms, seq] = String(ack.id).split('-').map(Number);
    const [lms, lseq] = (tail.at(-1) ?? body.messages.at(-1)!).id.split('-').map(Number);
    expect(ms! > lms! || (ms === lms && seq! > lseq!)).toBe(true);
    await d.close();
  }, 90_000);
});
