import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChatCore, type ChatEvent, ChatError } from '../src/chat/index.js';
import { Outbox } from '../src/client/web/outbox.js';
import type { ClientFrame, ServerFrame } from '../src/protocol/frames.js';
import { WsLineTranslator } from '../src/client/ws-lines.js';
import { FileStore } from '../src/store/index.js';
import type { ChatStore } from '../src/store/types.js';
import { fakeTokens, useFileCore } from './helpers/core.js';
import { JsonSession } from '../src/transports/json-session.js';

const fx = useFileCore('chat-cid-');

function logLines(): Record<string, unknown>[] {
  return readFileSync(fx.store.path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function jsonClient(c: ChatCore = fx.core) {
  const frames: Record<string, unknown>[] = [];
  const s = new JsonSession(
    c,
    { send: (t) => frames.push(JSON.parse(t)), close: () => {} },
    {
      transport: 'ws',
      serverName: 'test',
      tokens: fakeTokens,
      maxFrameBytes: 16384,
      ratePerSecond: 5,
      burst: 10,
    },
  );
  await s.start();
  return {
    s,
    frames,
    send: async (f: unknown) => {
      s.onText(typeof f === 'string' ? f : JSON.stringify(f));
      await s.drain();
    },
  };
}

describe('client message ids (cid)', () => {
  it('stores a resent message once in the file store and answers the resend with the first id', async () => {
    const seen: ChatEvent[] = [];
    const s = await fx.core.connect('test', (e) => seen.push(e), 'ada');
    await s.join('lobby');
    const first = await s.say('lobby', 'hello', 'c-1');
    const again = await s.say('lobby', 'hello', 'c-1');
    expect(again).toEqual(first);
    // Two concurrent sends with one cid (a resend racing the original): one write.
    const [x, y] = await Promise.all([s.say('lobby', 'twice', 'c-2'), s.say('lobby', 'twice', 'c-2')]);
    expect(x.id).toBe(y.id);
    const other = await s.say('lobby', 'hello', 'c-3');
    expect(other.id).not.toBe(first.id);
    const live = seen.filter((e) => e.type === 'message' && !e.replay);
    expect(live).toHaveLength(3);
    expect(logLines().map((r) => r.cid)).toEqual(['c-1', 'c-2', 'c-3']);
  });

  it('keeps deduplicating after a restart: the cid is in the log', async () => {
    const first = await fx.store.append('lobby', 'ada', 'landed before the crash', { clientId: 'k1' });
    await fx.store.close();
    const reopened = new FileStore({ dataDir: fx.dir });
    await reopened.open();
    try {
      const retry = await reopened.append('lobby', 'ADA', 'landed before the crash', { clientId: 'k1' });
      expect(retry).toEqual(first);
      // The same cid from another sender or in another room is a different message.
      const bob = await reopened.append('lobby', 'bob', 'mine', { clientId: 'k1' });
      const elsewhere = await reopened.append('other', 'ada', 'there', { clientId: 'k1' });
      expect(new Set([first.id, bob.id, elsewhere.id]).size).toBe(3);
      expect((await reopened.read('lobby', { limit: 10 })).messages).toHaveLength(2);
      // Replayed history never shows the cid: it is the sender's business only.
      expect(Object.keys((await reopened.read('lobby', { limit: 10 })).messages[0]!)).not.toContain('cid');
    } finally {
      await reopened.close();
    }
  });

  it('remembers a bounded number of cids per nickname and of nicknames', async () => {
    const small = new FileStore({ dataDir: join(fx.dir, 'small'), cidsPerNick: 2, cidNicks: 2 });
    await small.open();
    try {
      const a1 = await small.append('r', 'ada', 'one', { clientId: '1' });
      await small.append('r', 'ada', 'two', { clientId: '2' });
      expect((await small.append('r', 'ada', 'one', { clientId: '1' })).id).toBe(a1.id);
      await small.append('r', 'ada', 'three', { clientId: '3' });
      await small.append('r', 'ada', 'four', { clientId: '4' });
      // '1' fell out of ada's window of 2: stored again (documented limit).
      expect((await small.append('r', 'ada', 'one', { clientId: '1' })).id).not.toBe(a1.id);
      const b = await small.append('r', 'bob', 'b', { clientId: 'x' });
      await small.append('r', 'cy', 'c', { clientId: 'x' });
      await small.append('r', 'dee', 'd', { clientId: 'x' });
      expect((await small.append('r', 'bob', 'b', { clientId: 'x' })).id).not.toBe(b.id);
    } finally {
      await small.close();
    }
  });

  it('refuses a malformed cid with CID_INVALID before anything is stored', async () => {
    const s = await fx.core.connect('test', () => {}, 'ada');
    await s.join('lobby');
    for (const bad of ['', 'has space', 'x'.repeat(65), 'é', 'a\nb']) {
      await expect(s.say('lobby', 'hi', bad)).rejects.toMatchObject({ code: 'CID_INVALID' });
    }
    await expect(fx.core.post('http', 'ada', 'lobby', 'hi', 'x'.repeat(65))).rejects.toBeInstanceOf(
      ChatError,
    );
    expect(await s.say('lobby', 'hi', 'x'.repeat(64))).toMatchObject({ text: 'hi' });
    expect(logLines()).toHaveLength(1);
  });

  it('echoes the cid on the WebSocket ack, and a resend over a new connection gets the same id', async () => {
    const a = await jsonClient();
    await a.send({ type: 'nick', nick: 'ada' });
    await a.send({ type: 'join', room: 'lobby' });
    await a.send({ type: 'send', room: 'lobby', text: 'hi', cid: 'abc.1', ref: 'r1' });
    const ack = a.frames.find((f) => f.type === 'ack');
    expect(ack).toMatchObject({ type: 'ack', cid: 'abc.1', ref: 'r1', room: 'lobby' });
    // The ack got lost with the connection: the client reconnects and resends with the same cid.
    await a.s.end();
    const b = await jsonClient();
    await b.send({ type: 'nick', nick: 'ada' });
    await b.send({ type: 'join', room: 'lobby' });
    const before = b.frames.length;
    await b.send({ type: 'send', room: 'lobby', text: 'hi', cid: 'abc.1' });
    const ack2 = b.frames.slice(before).find((f) => f.type === 'ack');
    expect(ack2).toMatchObject({ cid: 'abc.1', id: ack!.id });
    expect(b.frames.slice(before).filter((f) => f.type === 'message')).toHaveLength(0);
    expect(logLines()).toHaveLength(1);
    // Without a cid nothing changes (version 1 clients), and the ack carries none.
    await b.send({ type: 'send', room: 'lobby', text: 'plain', ref: 'p' });
    const plain = b.frames.find((f) => f.type === 'ack' && f.ref === 'p');
    expect(plain).toBeDefined();
    expect(plain).not.toHaveProperty('cid');
  });

  it('rejects a cid of the wrong type or shape on the wire, echoing a usable one on errors', async () => {
    const a = await jsonClient();
    await a.send({ type: 'join', room: 'lobby' });
    await a.send({ type: 'send', room: 'lobby', text: 'x', cid: 5 });
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'BAD_FRAME' });
    await a.send({ type: 'send', room: 'lobby', text: 'x', cid: 'no spaces please' });
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'CID_INVALID' });
    expect(a.frames.at(-1)).not.toHaveProperty('cid');
    await a.send({ type: 'send', room: 'nowhere', text: 'x', cid: 'q1' });
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'NOT_IN_ROOM', cid: 'q1' });
  });

  it('answers STORE_FAILED with the cid so the client can resend it', async () => {
    const failing: ChatStore = Object.create(fx.store) as ChatStore;
    failing.append = () => Promise.reject(new Error('disk on fire'));
    const c2 = new ChatCore(failing);
    const a = await jsonClient(c2);
    await a.send({ type: 'join', room: 'lobby' });
    await a.send({ type: 'send', room: 'lobby', text: 'x', cid: 'z9' });
    expect(a.frames.at(-1)).toMatchObject({ type: 'error', code: 'STORE_FAILED', cid: 'z9' });
    await c2.shutdown();
  });
});

describe('Session.close', () => {
  it('is idempotent: a second call waits for the first one to finish leaving', async () => {
    let releaseGate!: () => void;
    const gate = new Promise<void>((r) => {
      releaseGate = r;
    });
    // A store whose leave is slow (a networked store mid-round-trip).
    const slow: ChatStore = Object.create(fx.store) as ChatStore;
    slow.removeMember = async (room, nick) => {
      await gate;
      return fx.store.removeMember(room, nick);
    };
    const c2 = new ChatCore(slow);
    const s = await c2.connect('test', () => {}, 'ada');
    await s.join('lobby');
    const first = s.close();
    let secondDone = false;
    const second = s.close().then(() => {
      secondDone = true;
    });
    expect(s.close()).toBe(first);
    await new Promise((r) => setTimeout(r, 50));
    // The old behaviour: the second call returned at once while ada was still a member.
    expect(secondDone).toBe(false);
    releaseGate();
    await second;
    expect(await fx.store.members('lobby')).toEqual([]);
    expect(await fx.store.nickTaken('ada')).toBe(false);
    expect(c2.sessionCount).toBe(0);
    // Shutdown after the transport closed the session also waits for the same work.
    await c2.shutdown();
  });
});

describe('client outbox', () => {
  const server = (f: ServerFrame) => f;

  it('keeps a message until its ack, resends it after a reconnect with the same cid', () => {
    const t = new WsLineTranslator('ada');
    t.output(server({ type: 'welcome', v: 1, nick: 'ada', token: 't', server: 's', limits: LIMITS }));
    t.output(server({ type: 'joined', room: 'lobby', members: ['ada'], count: 1 }));
    const sent = t.input('hello').frames[0] as Extract<ClientFrame, { type: 'send' }>;
    expect(sent).toMatchObject({ type: 'send', room: 'lobby', text: 'hello' });
    expect(sent.cid).toMatch(/^[\x21-\x7e]{1,64}$/);
    t.input('second');
    // The connection dropped before any ack: after the next welcome both go out again, after the joins.
    const resume = t.output(
      server({ type: 'welcome', v: 1, nick: 'ada', token: 't', server: 's', limits: LIMITS }),
    );
    const types = resume.send!.map((f) => f.type);
    expect(types.lastIndexOf('join')).toBeLessThan(types.indexOf('send'));
    const resent = resume.send!.filter((f) => f.type === 'send');
    expect(resent.map((f) => (f as { cid: string }).cid)).toEqual([sent.cid, expect.any(String)]);
    expect(resent.map((f) => (f as { text: string }).text)).toEqual(['hello', 'second']);
    t.output(server({ type: 'ack', cid: sent.cid!, id: '1-0', room: 'lobby', ts: 1 }));
    const after = t.output(
      server({ type: 'welcome', v: 1, nick: 'ada', token: 't', server: 's', limits: LIMITS }),
    );
    expect(after.send!.filter((f) => f.type === 'send').map((f) => (f as { text: string }).text)).toEqual([
      'second',
    ]);
  });

  it('retries STORE_FAILED with growing delays, then gives up; other errors drop the message', () => {
    const box = new Outbox({ maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 250 }, 'p');
    const f = box.add('lobby', 'hi') as { cid: string };
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = box.failed(f.cid, 'STORE_FAILED');
      expect(d.action).toBe('retry');
      if (d.action === 'retry') delays.push(d.delayMs);
      expect(box.resend(f.cid)).toMatchObject({ cid: f.cid, text: 'hi' });
    }
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[0]).toBeLessThanOrEqual(120);
    expect(delays[2]).toBeLessThanOrEqual(300);
    expect(box.failed(f.cid, 'STORE_FAILED')).toMatchObject({ action: 'drop', gaveUp: true });
    expect(box.size).toBe(0);
    const g = box.add('lobby', 'bad') as { cid: string };
    expect(box.failed(g.cid, 'SHUTTING_DOWN').action).toBe('wait');
    // A burst of resends after a reconnect may hit the rate limit: paced, not dropped.
    expect(box.failed(g.cid, 'RATE_LIMITED').action).toBe('retry');
    expect(box.failed(g.cid, 'TEXT_TOO_LONG')).toMatchObject({ action: 'drop', gaveUp: false });
    expect(box.failed('not-ours', 'STORE_FAILED').action).toBe('unknown');
  });

  it('is bounded: a full outbox refuses new messages instead of growing', () => {
    const t = new WsLineTranslator('ada', { maxPending: 3 });
    t.output({ type: 'joined', room: 'lobby', members: ['ada'], count: 1 });
    for (let i = 0; i < 3; i++) expect(t.input(`m${i}`).frames).toHaveLength(1);
    const refused = t.input('one too many');
    expect(refused.frames).toHaveLength(0);
    expect(refused.print?.[0]).toMatch(/waiting for the server/);
    expect(t.outbox.size).toBe(3);
  });

  it('keeps pending messages across a reload with their cids', () => {
    const a = new Outbox({}, 'page1');
    a.add('lobby', 'typed before reload');
    const b = new Outbox({}, 'page2');
    b.restore(JSON.parse(JSON.stringify(a.list())));
    expect(b.resendAll()).toEqual([
      { type: 'send', room: 'lobby', text: 'typed before reload', cid: 'page1.1' },
    ]);
  });
});

const LIMITS = { maxMessageLength: 2000, maxFrameBytes: 16384, ratePerSecond: 5, burst: 10 };

describe('terminal client resume', () => {
  it('rejoins every room it was in after a reconnect, not only rooms where it saw a message', () => {
    const t = new WsLineTranslator('ada');
    t.output({ type: 'welcome', nick: 'ada', server: 'test' } as never);
    for (const room of ['lobby', 'quiet', 'busy', 'dev'])
      t.output({ type: 'joined', room, members: ['ada'], count: 1 });
    t.output({ type: 'message', id: '5-0', room: 'busy', nick: 'bob', text: 'hi', ts: 1 } as never);
    t.output({ type: 'left', room: 'dev' } as never);
    t.current = 'quiet';
    const joins = t.resumeFrames('ada').filter((f) => f.type === 'join');
    expect(joins).toEqual([
      { type: 'join', room: 'lobby' },
      { type: 'join', room: 'busy', after: '5-0' },
      { type: 'join', room: 'quiet' }, // the current room last: it is current again afterwards
    ]);
  });
});
