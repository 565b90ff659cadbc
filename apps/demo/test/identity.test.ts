import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatCore, type ChatEvent } from '../src/chat/index.js';
import { checkAccountName, Identity } from '../src/chat/identity.js';
import { checkPassword, hashPassword, SCRYPT, verifyPassword } from '../src/chat/passwords.js';
import { FileStore } from '../src/store/index.js';
import { authenticate } from '../src/transports/auth.js';
import { createTokenIssuer } from '../src/transports/tokens.js';

let dir: string;
let store: FileStore;
const cores: ChatCore[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-identity-'));
  store = new FileStore({ dataDir: dir });
  await store.open();
});
afterEach(async () => {
  for (const c of cores.splice(0)) await c.shutdown();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function collector() {
  const events: ChatEvent[] = [];
  return { events, sink: (e: ChatEvent) => events.push(e) };
}

describe('password hashing', () => {
  it('scrypt with the documented parameters, a fresh salt each time, constant-time check', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(
      new RegExp(`^scrypt\\$${SCRYPT.N}\\$${SCRYPT.r}\\$${SCRYPT.p}\\$[\\w-]{22}\\$[\\w-]{43}$`),
    );
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsE', a)).toBe(false);
    expect(await verifyPassword('correct horse', 'scrypt$1$1$1$x$y')).toBe(false);
    // A tampered hash asking for gigabytes of memory is refused, not computed.
    expect(await verifyPassword('x', a.replace(`$${SCRYPT.N}$`, '$1048576$'))).toBe(false);
  });

  it('bounds passwords and names', () => {
    expect(() => checkPassword('short')).toThrow(expect.objectContaining({ code: 'PASSWORD_INVALID' }));
    expect(() => checkPassword('x'.repeat(257))).toThrow(
      expect.objectContaining({ code: 'PASSWORD_INVALID' }),
    );
    expect(checkPassword('x'.repeat(256))).toHaveLength(256);
    expect(() => checkAccountName('guest-alice')).toThrow(expect.objectContaining({ code: 'NICK_INVALID' }));
    expect(() => checkAccountName('a'.repeat(25))).toThrow(expect.objectContaining({ code: 'NICK_INVALID' }));
    expect(checkAccountName('alice')).toBe('alice');
  });
});

describe('identity service', () => {
  it('rate-limits login attempts per account, whatever the address', async () => {
    const id = new Identity({ accounts: store.accounts, loginBurstPerAccount: 3 });
    await id.register('alice', 'password-1', '10.0.0.1');
    for (let i = 0; i < 3; i++) {
      await expect(id.login('alice', 'wrong-pass', `10.0.1.${i}`)).rejects.toMatchObject({
        code: 'LOGIN_FAILED',
      });
    }
    // Even the right password waits now: guessing cannot continue from fresh addresses.
    await expect(id.login('alice', 'password-1', '10.0.2.1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(id.login('ALICE', 'password-1', '10.0.2.2')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('rate-limits login attempts per address, whatever the account', async () => {
    const id = new Identity({ accounts: store.accounts, loginBurstPerAddress: 4 });
    for (let i = 0; i < 4; i++) {
      await expect(id.login(`user${i}`, 'whatever1', '10.9.9.9')).rejects.toMatchObject({
        code: 'LOGIN_FAILED',
      });
    }
    await expect(id.login('user9', 'whatever1', '10.9.9.9')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(id.register('newbie', 'whatever1', '10.9.9.9')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
    await expect(id.login('user9', 'whatever1', '10.9.9.8')).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
  });

  it('an unknown name and a wrong password fail alike', async () => {
    const id = new Identity({ accounts: store.accounts });
    await id.register('alice', 'password-1');
    const unknown = await id.login('nobody', 'password-1').catch((e: Error) => e);
    const wrong = await id.login('alice', 'password-2').catch((e: Error) => e);
    expect(unknown).toMatchObject({ code: 'LOGIN_FAILED', message: 'wrong name or password' });
    expect(wrong).toMatchObject({ code: 'LOGIN_FAILED', message: 'wrong name or password' });
    await expect(id.register('ALICE', 'password-3')).rejects.toMatchObject({ code: 'ACCOUNT_EXISTS' });
  });

  it('sessions expire', async () => {
    let now = Date.now();
    const id = new Identity({ accounts: store.accounts, sessionTtlMs: 60_000, now: () => now });
    await id.register('alice', 'password-1');
    const { session } = await id.login('alice', 'password-1');
    await expect(id.live(session.id)).resolves.toMatchObject({ account: 'alice' });
    now += 60_001;
    await expect(id.live(session.id)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
  });

  it('logout, a password change and an operator revocation end sessions', async () => {
    const id = new Identity({ accounts: store.accounts });
    await id.register('alice', 'password-1');
    const a = await id.login('alice', 'password-1');
    const b = await id.login('alice', 'password-1');
    const c = await id.login('alice', 'password-1');
    await id.logout(a.session.id);
    await expect(id.live(a.session.id)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await expect(id.live(b.session.id)).resolves.toBeDefined();
    const changed = await id.changePassword('alice', 'password-1', 'password-2');
    await expect(id.live(b.session.id)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await expect(id.live(c.session.id)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await expect(id.live(changed.session.id)).resolves.toBeDefined();
    await expect(id.login('alice', 'password-1')).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect(await id.revokeAccount('alice')).toBe(1);
    await expect(id.live(changed.session.id)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
  });

  it('accounts and sessions survive a restart of the file store (accounts.json, mode 0600)', async () => {
    const id = new Identity({ accounts: store.accounts });
    await id.register('alice', 'password-1');
    const { session } = await id.login('alice', 'password-1');
    await store.close();
    expect(statSync(join(dir, 'accounts.json')).mode & 0o777).toBe(0o600);
    store = new FileStore({ dataDir: dir });
    await store.open();
    const again = new Identity({ accounts: store.accounts });
    await expect(again.live(session.id)).resolves.toMatchObject({ account: 'alice' });
    await expect(again.login('alice', 'password-1')).resolves.toBeDefined();
  });
});

describe('the hijack sequence of issue 17 (chat core, file store)', () => {
  it('fails at every step', async () => {
    const tokens = createTokenIssuer();
    const core = new ChatCore(store, {
      identity: { guests: 'open', tokens: { sign: tokens.sign!, open: tokens.open! } },
    });
    cores.push(core);
    const a1 = collector();
    const a2 = collector();
    const b = collector();
    const alice = await core.connect('test', a1.sink);
    const result = await alice.register('alice', 'password-1');
    expect(alice.nick).toBe('alice');
    expect(core.principal(alice)).toBe('alice');
    const aliceToken = result.token!;
    // A second session of the same account, elsewhere.
    const alice2 = await core.connect('test', a2.sink);
    await alice2.login('alice', 'password-1');
    // bob cannot take the registered name: neither at connect nor by renaming.
    await expect(core.connect('test', () => {}, 'alice')).rejects.toMatchObject({ code: 'NAME_REGISTERED' });
    const bob = await core.connect('test', b.sink, 'bob');
    await expect(bob.setNick('Alice')).rejects.toMatchObject({ code: 'NAME_REGISTERED' });
    expect(core.principal(bob)).toBeUndefined();
    // carol's DM reaches every session of the account and nobody else.
    const carol = await core.connect('test', () => {}, 'carol');
    await carol.dm('alice', 'my password is hunter2');
    const dms = (e: ChatEvent[]) =>
      e.filter((x) => x.type === 'dm').map((x) => (x.type === 'dm' ? x.text : ''));
    expect(dms(a1.events)).toEqual(['my password is hunter2']);
    expect(dms(a2.events)).toEqual(['my password is hunter2']);
    expect(dms(b.events)).toEqual([]);
    // alice logs out everywhere: her name stays hers, DMs go nowhere, her tokens are dead.
    await alice.logout();
    await alice2.logout();
    expect(alice.nick).toMatch(/^guest\d+$/);
    await expect(bob.setNick('alice')).rejects.toMatchObject({ code: 'NAME_REGISTERED' });
    await expect(carol.dm('alice', 'still there?')).rejects.toMatchObject({ code: 'NO_SUCH_NICK' });
    expect(dms(b.events)).toEqual([]);
    await expect(authenticate(core, tokens, aliceToken)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    // A forged token (other secret) is refused too.
    const forged = createTokenIssuer().sign!({ nick: 'alice', ls: result.session.id }, 60);
    await expect(authenticate(core, tokens, forged)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('a guest token dies when its connection renames or leaves', async () => {
    const tokens = createTokenIssuer();
    const core = new ChatCore(store, {
      identity: { guests: 'open', tokens: { sign: tokens.sign!, open: tokens.open! } },
    });
    cores.push(core);
    const g = await core.connect('test', () => {}, 'dave');
    const t = tokens.issue('dave', store.nickOwner(g.id));
    await expect(authenticate(core, tokens, t)).resolves.toMatchObject({ nick: 'dave' });
    await g.setNick('dave2');
    const other = await core.connect('test', () => {}, 'dave');
    await expect(authenticate(core, tokens, t)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await other.close();
    await expect(authenticate(core, tokens, t)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
  });

  it('guests on: prefixed names; guests off: nothing but login', async () => {
    const on = new ChatCore(store, { identity: { guests: 'on' } });
    cores.push(on);
    const g = await on.connect('test', () => {});
    expect(g.nick).toMatch(/^guest-\d+$/);
    await g.setNick('bob');
    expect(g.nick).toBe('guest-bob');
    await g.join('lobby');
    await on.shutdown();
    const off = new ChatCore(store, { identity: { guests: 'off' } });
    cores.push(off);
    const anon = await off.connect('test', () => {});
    await expect(anon.join('lobby')).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await expect(anon.dm('bob', 'x')).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await anon.register('erin', 'password-1');
    await expect(anon.join('lobby')).resolves.toBe('lobby');
    await anon.logout();
    expect(anon.rooms).toEqual([]);
    await expect(anon.say('lobby', 'x')).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
  });

  it('a password change keeps the changing connection logged in, in a new session', async () => {
    const core = new ChatCore(store, { identity: { guests: 'on' } });
    cores.push(core);
    const ev = collector();
    const a = await core.connect('test', ev.sink);
    const other = await core.connect('test', () => {});
    const first = await a.register('gina', 'password-1');
    await other.login('gina', 'password-1');
    const renewed = await a.changePassword('password-1', 'password-2');
    await new Promise((r) => setTimeout(r, 50));
    expect(a.account).toBe('gina');
    expect(a.nick).toBe('gina');
    expect(a.loginSession?.id).toBe(renewed.session.id);
    expect(renewed.session.id).not.toBe(first.session.id);
    await vi.waitFor(() => expect(other.account).toBeUndefined());
    await expect(a.say('lobby', 'x')).rejects.toMatchObject({ code: 'NOT_IN_ROOM' });
  });

  it('two sessions of one account in a room: the name stays listed until the last one leaves', async () => {
    const core = new ChatCore(store, { identity: { guests: 'on' } });
    cores.push(core);
    const a = await core.connect('test', () => {});
    const b = await core.connect('test', () => {});
    await a.register('hugo', 'password-1');
    await b.login('hugo', 'password-1');
    await a.join('lobby');
    await b.join('lobby');
    expect(await a.who('lobby')).toEqual(['hugo']);
    await a.leave('lobby');
    expect(await b.who('lobby')).toEqual(['hugo']);
    await b.leave('lobby');
    expect(await store.members('lobby')).toEqual([]);
  });

  it('a session ended elsewhere turns the connection into a guest at once', async () => {
    const core = new ChatCore(store, { identity: { guests: 'on' } });
    cores.push(core);
    const ev = collector();
    const a = await core.connect('test', ev.sink);
    await a.register('frank', 'password-1');
    await a.join('lobby');
    await core.identity.revokeAccount('frank');
    expect(a.account).toBeUndefined();
    await vi.waitFor(() => expect(a.nick).toMatch(/^guest-/));
    expect(ev.events.at(-1)).toMatchObject({ type: 'identity', account: undefined });
  });
});
