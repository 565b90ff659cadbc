import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WsLineTranslator } from '../src/client/ws-lines.js';
import { COMMANDS, helpEntries, helpLines, parseLine } from '../src/protocol/index.js';
import { JsonSession } from '../src/transports/json-session.js';
import { HELP_LINES, LineSession } from '../src/transports/line-session.js';
import { fakeTokens, useFileCore } from './helpers/core.js';

const fx = useFileCore('chat-cmds-');

async function lineServer() {
  const lines: string[] = [];
  const s = new LineSession(
    fx.core,
    { writeLine: (l) => lines.push(l), end: () => {} },
    { transport: 'tcp', serverName: 'test', tokens: fakeTokens },
  );
  await s.start();
  return {
    lines,
    send: async (l: string) => {
      const before = lines.length;
      s.onLine(l);
      await s.drain();
      return lines.slice(before);
    },
  };
}

async function jsonServer() {
  const frames: Record<string, unknown>[] = [];
  const s = new JsonSession(
    fx.core,
    { send: (t) => frames.push(JSON.parse(t)), close: () => {} },
    {
      transport: 'ws',
      serverName: 'test',
      tokens: fakeTokens,
      maxFrameBytes: 16384,
      ratePerSecond: 50,
      burst: 50,
    },
  );
  await s.start();
  return {
    frames,
    send: async (f: unknown) => {
      const before = frames.length;
      s.onText(JSON.stringify(f));
      await s.drain();
      return frames.slice(before);
    },
  };
}

/** A terminal client translator that has connected and joined the lobby. */
function translator(): WsLineTranslator {
  const t = new WsLineTranslator();
  t.output({
    type: 'welcome',
    v: 1,
    nick: 'ada',
    token: 'tok:ada',
    server: 'test',
    limits: { maxMessageLength: 2000, maxFrameBytes: 16384, ratePerSecond: 5, burst: 10 },
  });
  t.output({ type: 'joined', room: 'lobby', members: ['ada'], count: 1 });
  return t;
}

describe('one command table for the server, the terminal client and the web page', () => {
  it('every command of the table is in the help of the server and of the terminal client, and on the page', () => {
    const help = helpLines();
    expect(HELP_LINES).toEqual(help);
    expect(translator().input('/help').print).toEqual(help);
    for (const c of COMMANDS) {
      expect(help.some((l) => l.startsWith(`*   ${c.usage} `))).toBe(true);
      expect(helpEntries().map((e) => e.usage)).toContain(c.usage);
    }
    // The drift that happened once: the client's help lacked these.
    expect(help.join('\n')).toMatch(/\/ids on\|off/);
    expect(help.join('\n')).toMatch(/\/token/);
  });

  it('every command example parses as that command', () => {
    for (const c of COMMANDS) {
      const parsed = parseLine(c.example);
      expect(parsed.kind === 'command' && parsed.command.name).toBe(c.name);
    }
  });

  it('the line server runs every command of the table (none is unknown)', async () => {
    await (await lineServer()).send('/nick bob'); // for /msg bob
    const t = await lineServer();
    for (const c of COMMANDS) {
      const out = await t.send(c.example);
      expect(out.join('\n'), c.example).not.toMatch(/UNKNOWN_COMMAND|usage:/);
    }
  });

  it('the terminal client turns every command into frames the JSON server accepts, or answers it locally', async () => {
    await (await lineServer()).send('/nick bob');
    const server = await jsonServer();
    const t = new WsLineTranslator();
    // The real start: the server's welcome, the client's resume frames (the lobby join), the replies.
    const pump = async (frames: unknown[]) => {
      for (const f of frames) for (const r of await server.send(f)) t.output(r as never);
    };
    await pump(t.output(server.frames[0] as never).send ?? []);
    expect(t.current).toBe('lobby');
    for (const c of COMMANDS) {
      const { frames, print, quit } = t.input(c.example);
      expect(print?.join('\n') ?? '', c.example).not.toMatch(/^!/m);
      expect(frames.length > 0 || (print?.length ?? 0) > 0 || quit === true, c.example).toBe(true);
      for (const f of frames) {
        const replies = await server.send(f);
        // The server understood the frame (it may still refuse what it asks: a guest's private room).
        const frameErrors = replies.filter(
          (r) => r.type === 'error' && ['UNKNOWN_TYPE', 'BAD_FRAME', 'BAD_JSON'].includes(r.code as string),
        );
        expect(frameErrors, `${c.example} → ${JSON.stringify(f)}`).toEqual([]);
        for (const r of replies) t.output(r as never);
      }
    }
  });

  it('the server and the terminal client refuse bad commands with the same line', async () => {
    const t = await lineServer();
    const client = translator();
    for (const bad of ['/bogus', '/nick', '/join a b c', '/ids maybe', '/msg bob', '/cid onlyid', '/JOIN']) {
      const fromServer = await t.send(bad);
      expect(fromServer).toHaveLength(1);
      expect(client.input(bad).print, bad).toEqual(fromServer);
      expect(fromServer[0]).toMatch(/^! [A-Z_]+: /);
    }
  });

  it('the web page handles commands through the shared table, every command explicitly', () => {
    const app = readFileSync(join(import.meta.dirname, '../src/client/web/app.ts'), 'utf8');
    expect(app).toMatch(/from '\.\.\/\.\.\/protocol\/commands\.js'/);
    expect(app).toMatch(/parseLine\(text\)/);
    // `unhandledCommand(cmd)` makes a command missing from the page's switch a type error.
    expect(app).toMatch(/default:\s*unhandledCommand\(cmd\)/);
    for (const c of COMMANDS) expect(app).toContain(`case '${c.name}':`);
  });
});
