import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChatCore, type ChatEvent, type Session } from '../src/chat/index.js';
import { WsLineTranslator } from '../src/client/ws-lines.js';
import type { ServerFrame } from '../src/protocol/frames.js';
import { FileStore } from '../src/store/index.js';
import { JsonSession } from '../src/transports/json-session.js';
import { fakeTokens } from './helpers/core.js';

let dir: string;
let store: FileStore;
let core: ChatCore;

async function openCore(): Promise<void> {
  store = new FileStore({ dataDir: dir });
  await store.open();
  core = new ChatCore(store, { historyOnJoin: 10 });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-private-'));
  await openCore();
});
afterEach(async () => {
  await core.shutdown();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Client {
  s: Session;
  events: ChatEvent[];
}

async function guest(): Promise<Client> {
  const events: ChatEvent[] = [];
  const s = await core.connect('test', (e) => events.push(e));
  return { s, events };
}

/** A connection logged in as a (new or existing) account. */
async function account(name: string): Promise<Client> {
  const c = await guest();
  if (await core.identity.isRegistered(name)) await c.s.login(name, 'password-1');
  else await c.s.register(name, 'password-1');
  return c;
}

const texts = (c: Client) =>
  c.events.flatMap((e) => (e.type === 'message' ? [`${e.message.nick}: ${e.message.text}`] : []));

describe('private rooms in the chat core', () => {
  it('keeps history, member list and posting to members; the owner invites and kicks', async () => {
    const alice = await account('alice');
    const bob = await account('bob');
    const carol = await account('carol');
    expect(core.principal(alice.s)).toBe('alice');
    await alice.s.create('secret', true);
    expect(alice.events).toContainEqual(
      expect.objectContaining({ type: 'joined', room: 'secret', private: true }),
    );
    await alice.s.say('secret', 'for members only');

    // Not invited: no join, no member list, no history, no post (HTTP path), not in the room list.
    await expect(bob.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(bob.s.who('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(core.history('secret', undefined, 10, 'bob')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(core.history('secret', undefined, 10)).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(
      core.post('http', 'bob', 'secret', 'let me in', undefined, { account: 'bob' }),
    ).rejects.toMatchObject({ code: 'NOT_INVITED' });
    expect((await core.rooms('bob')).map((r) => r.room)).not.toContain('secret');
    expect((await core.rooms('alice')).map((r) => r.room)).toContain('secret');
    expect((await core.roomPage({ principal: 'bob' })).rooms.map((r) => r.room)).not.toContain('secret');

    // Only the owner manages members.
    await expect(bob.s.invite('secret', 'bob')).rejects.toMatchObject({ code: 'NOT_OWNER' });
    await expect(alice.s.invite('secret', 'nobody')).rejects.toMatchObject({ code: 'NO_SUCH_ACCOUNT' });
    expect(await alice.s.invite('secret', 'BOB')).toBe('bob');
    // The invitation reaches bob as a direct message.
    expect(bob.events).toContainEqual(
      expect.objectContaining({ type: 'dm', from: 'alice', text: expect.stringMatching(/#secret/) }),
    );
    await bob.s.join('secret');
    expect(texts(bob)).toContain('alice: for members only');
    expect(await bob.s.who('secret')).toEqual(['alice', 'bob']);
    await bob.s.say('secret', 'thanks');
    expect((await core.history('secret', undefined, 10, 'bob')).messages.map((m) => m.text)).toEqual([
      'for members only',
      'thanks',
    ]);
    await expect(carol.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(bob.s.kick('secret', 'carol')).rejects.toMatchObject({ code: 'NOT_OWNER' });
    await expect(alice.s.kick('secret', 'carol')).rejects.toMatchObject({ code: 'NOT_A_MEMBER' });
    await expect(alice.s.kick('secret', 'alice')).rejects.toMatchObject({ code: 'NOT_OWNER' });

    // Kicked: bob's connection leaves at once, hears nothing more, cannot come back or post.
    await alice.s.kick('secret', 'bob');
    await expect.poll(() => bob.s.inRoom('secret')).toBe(false);
    expect(bob.events).toContainEqual({ type: 'left', room: 'secret', by: 'alice' });
    await alice.s.say('secret', 'after the kick');
    expect(texts(bob)).not.toContain('alice: after the kick');
    await expect(bob.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    await expect(bob.s.say('secret', 'still here?')).rejects.toMatchObject({ code: 'NOT_IN_ROOM' });
    expect(await alice.s.who('secret')).toEqual(['alice']);
  });

  it('a kicked member whose kick event was lost stops receiving the room at the next re-check', async () => {
    await core.shutdown();
    core = new ChatCore(store, { historyOnJoin: 10, privateRecheckMs: 0 });
    const alice = await account('alice');
    const bob = await account('bob');
    await alice.s.create('secret', true);
    await alice.s.invite('secret', 'bob');
    await bob.s.join('secret');
    // Removed from the list without the kick event (as if Redis pub/sub lost it).
    await store.acls.removeMember('secret', 'bob');
    await alice.s.say('secret', 'one');
    await expect.poll(() => bob.s.inRoom('secret')).toBe(false);
    await expect.poll(() => bob.events).toContainEqual({ type: 'left', room: 'secret' });
    await alice.s.say('secret', 'two');
    expect(texts(bob)).not.toContain('alice: two');
  });

  it('refuses guests, taking over an existing room, and invitations to public rooms', async () => {
    const g = await guest();
    expect(core.principal(g.s)).toBeUndefined();
    await expect(g.s.create('mine', true)).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    const alice = await account('alice');
    await alice.s.create('secret', true);
    await expect(g.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    // Existing rooms stay what they are: the lobby, a room with people, a room with history.
    await expect(alice.s.create('lobby', true)).rejects.toMatchObject({ code: 'ROOM_EXISTS' });
    await g.s.join('public');
    await expect(alice.s.create('public', true)).rejects.toMatchObject({ code: 'ROOM_EXISTS' });
    await g.s.say('public', 'hello');
    await g.s.leave('public');
    await expect(alice.s.create('public', true)).rejects.toMatchObject({ code: 'ROOM_EXISTS' });
    const bob = await account('bob');
    await expect(bob.s.create('secret', true)).rejects.toMatchObject({ code: 'ROOM_EXISTS' });
    await expect(alice.s.invite('public', 'bob')).rejects.toMatchObject({ code: 'NOT_PRIVATE' });
    // `/create ROOM` without `private` just joins, like /join.
    expect(await g.s.create('public', false)).toBe('public');
  });

  it('a member who logs out leaves the private rooms; the ACL survives a restart of the file store', async () => {
    const alice = await account('alice');
    const bob = await account('bob');
    await alice.s.create('secret', true);
    await alice.s.invite('secret', 'bob');
    await bob.s.join('secret');
    await bob.s.logout();
    expect(bob.s.inRoom('secret')).toBe(false);
    await expect(bob.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });

    await core.shutdown();
    await store.close();
    await openCore();
    const again = await account('bob');
    await again.s.join('secret');
    expect(await again.s.who('secret')).toEqual(['bob']);
    const carol = await account('carol');
    await expect(carol.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
    const owner = await account('alice');
    await owner.s.kick('secret', 'bob');
    await core.shutdown();
    await store.close();
    await openCore();
    const later = await account('bob');
    await expect(later.s.join('secret')).rejects.toMatchObject({ code: 'NOT_INVITED' });
  });
});

describe('private rooms in the terminal client (its lines over the JSON session)', () => {
  /** A terminal client wired to a JsonSession on the core: typed lines in, printed lines out. */
  async function terminal() {
    const printed: string[] = [];
    const t = new WsLineTranslator();
    let session: JsonSession;
    const deliver = (f: ServerFrame) => {
      const out = t.output(f);
      printed.push(...out.lines);
      for (const frame of out.send ?? []) session.onText(JSON.stringify(frame));
    };
    session = new JsonSession(
      core,
      { send: (text) => deliver(JSON.parse(text) as ServerFrame), close: () => {} },
      {
        transport: 'ws',
        serverName: 'test',
        tokens: fakeTokens,
        maxFrameBytes: 16384,
        ratePerSecond: 50,
        burst: 50,
      },
    );
    await session.start();
    await session.drain();
    return {
      printed,
      type: async (line: string) => {
        const before = printed.length;
        const { frames, print } = t.input(line);
        printed.push(...(print ?? []));
        for (const f of frames) session.onText(JSON.stringify(f));
        await session.drain();
        // Events fanned out after the reply (a kick elsewhere) get a moment to arrive.
        await new Promise((r) => setTimeout(r, 20));
        return printed.slice(before);
      },
    };
  }

  it('creates, invites, refuses and kicks with the same lines as netcat', async () => {
    const alice = await terminal();
    const bob = await terminal();
    await alice.type('/register alice password-1');
    await bob.type('/register bob password-1');
    expect(await alice.type('/create secret private')).toContainEqual(
      expect.stringMatching(/^\* you joined private room #secret \(1 here: alice\)$/),
    );
    await alice.type('psst');
    expect(await bob.type('/join secret')).toContainEqual(
      expect.stringMatching(/^! NOT_INVITED: #secret is a private room/),
    );
    expect(await bob.type('/kick alice secret')).toContainEqual(expect.stringMatching(/^! NOT_OWNER: /));
    expect(await alice.type('/invite bob')).toEqual(['* invited bob to #secret']);
    expect(bob.printed).toContainEqual(expect.stringMatching(/^\[dm\] <alice> invited you to #secret/));
    expect(await bob.type('/join secret')).toContain('[secret] <alice> psst');
    expect(await alice.type('/kick bob')).toContain('* removed bob from #secret');
    await expect.poll(() => bob.printed).toContain('* alice removed you from #secret');
    expect(await bob.type('/who secret')).toContainEqual(expect.stringMatching(/^! NOT_INVITED: /));
  });
});
