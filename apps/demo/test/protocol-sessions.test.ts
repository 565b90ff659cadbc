import { describe, expect, it } from 'vitest';
import { fakeTokens, useFileCore } from './helpers/core.js';
import { JsonSession } from '../src/transports/json-session.js';
import { LineSession } from '../src/transports/line-session.js';

const fx = useFileCore('chat-proto-');

async function jsonClient() {
  const frames: Record<string, unknown>[] = [];
  const closes: number[] = [];
  const s = new JsonSession(
    fx.core,
    { send: (t) => frames.push(JSON.parse(t)), close: (code) => closes.push(code) },
    {
      transport: 'ws',
      serverName: 'test',
      tokens: fakeTokens,
      maxFrameBytes: 16384,
      ratePerSecond: 5,
      burst: 10,
      maxInvalidFrames: 5,
    },
  );
  await s.start();
  return {
    s,
    frames,
    closes,
    send: async (f: unknown) => {
      s.onText(typeof f === 'string' ? f : JSON.stringify(f));
      await s.drain();
    },
  };
}

async function lineClient() {
  const lines: string[] = [];
  let ended = false;
  const s = new LineSession(
    fx.core,
    {
      writeLine: (l) => lines.push(l),
      end: () => {
        ended = true;
      },
    },
    { transport: 'tcp', serverName: 'test', tokens: fakeTokens },
  );
  await s.start();
  return {
    s,
    lines,
    ended: () => ended,
    send: async (l: string) => {
      s.onLine(l);
      await s.drain();
    },
  };
}

describe('JSON protocol session', () => {
  it('welcomes, joins with history and acks a send with its id', async () => {
    const c = await jsonClient();
    expect(c.frames[0]).toMatchObject({ type: 'welcome', v: 1 });
    await c.send({ type: 'nick', nick: 'ada', ref: 'n' });
    expect(c.frames.at(-1)).toMatchObject({ type: 'nick', nick: 'ada', token: 'tok:ada', ref: 'n' });
    await c.send({ type: 'join', room: 'lobby', ref: 'j' });
    expect(c.frames).toContainEqual(expect.objectContaining({ type: 'joined', room: 'lobby', ref: 'j' }));
    await c.send({ type: 'send', room: 'lobby', text: 'hello', ref: '1' });
    const ack = c.frames.find((f) => f.type === 'ack') as { id: string };
    expect(ack).toMatchObject({ ref: '1', room: 'lobby' });
    expect(c.frames).toContainEqual(expect.objectContaining({ type: 'message', id: ack.id, text: 'hello' }));
  });

  it('answers bad JSON, unknown types and wrong fields with errors and stays open', async () => {
    const c = await jsonClient();
    await c.send('{nope');
    await c.send('[1,2]');
    await c.send({ type: 'explode' });
    await c.send({ type: 'send', room: 5, text: 'x', ref: 'r' });
    const codes = c.frames.filter((f) => f.type === 'error').map((f) => f.code);
    expect(codes).toEqual(['BAD_JSON', 'BAD_JSON', 'UNKNOWN_TYPE', 'BAD_FRAME']);
    expect(c.closes).toEqual([]);
    await c.send({ type: 'ping', ref: 'p' });
    expect(c.frames.at(-1)).toEqual({ type: 'pong', ref: 'p' });
  });

  it('closes with 1008 after too many invalid frames', async () => {
    const c = await jsonClient();
    for (let i = 0; i < 5; i++) await c.send('garbage');
    expect(c.closes).toEqual([1008]);
  });
});

describe('line protocol session', () => {
  it('greets, auto-joins the lobby and chats with a JSON client', async () => {
    const t = await lineClient();
    expect(t.lines[0]).toMatch(/welcome/);
    expect(t.lines.join('\n')).toMatch(/you joined #lobby/);
    await t.send('/nick netcat');
    const j = await jsonClient();
    await j.send({ type: 'nick', nick: 'web' });
    await j.send({ type: 'join', room: 'lobby' });
    await t.send('hello from nc');
    expect(j.frames).toContainEqual(
      expect.objectContaining({ type: 'message', nick: 'netcat', text: 'hello from nc' }),
    );
    await j.send({ type: 'send', room: 'lobby', text: 'hi nc' });
    expect(t.lines).toContain('[lobby] <web> hi nc');
    expect(t.lines).not.toContain('[lobby] <netcat> hello from nc');
  });

  it('runs every command and reports errors as "! CODE: ..." lines', async () => {
    const t = await lineClient();
    await t.send('/nick alice');
    const b = await lineClient();
    await b.send('/nick bob');
    await t.send('/join dev');
    await t.send('/rooms');
    expect(t.lines.at(-1)).toMatch(/#dev \(1\).*#lobby \(2\)/);
    await t.send('/who');
    expect(t.lines.at(-1)).toBe('* in #dev: alice');
    await t.send('/msg bob psst');
    expect(b.lines).toContain('[dm] <alice> psst');
    await t.send('/nick BOB');
    expect(t.lines.at(-1)).toMatch(/^! NICK_TAKEN: /);
    await t.send('/bogus');
    expect(t.lines.at(-1)).toMatch(/^! UNKNOWN_COMMAND/);
    await t.send('/leave');
    expect(t.lines.at(-1)).toBe('* current room: #lobby');
    await t.send('/help');
    expect(t.lines.at(-1)).toMatch(/anything else/);
    await t.send('/token');
    expect(t.lines.at(-1)).toBe('* token for alice: tok:alice');
    await t.send('/quit');
    expect(t.ended()).toBe(true);
  });
});

describe('pipelining limits', () => {
  it('closes a JSON client that pipelines more frames than it lets the server handle', async () => {
    const c = await jsonClient();
    for (let i = 0; i < 1100; i++) c.s.onText('{"type":"ping"}');
    expect(c.closes).toEqual([1008]);
    await c.s.drain();
  });

  it('drops a line client that floods faster than lines are handled', async () => {
    const t = await lineClient();
    for (let i = 0; i < 1100; i++) t.s.onLine('/who');
    await t.s.drain();
    expect(t.ended()).toBe(true);
    expect(t.lines).toContain('! FLOOD: too many lines in flight, disconnecting');
  });
});
