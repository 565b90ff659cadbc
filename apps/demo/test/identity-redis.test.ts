import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ChatCore, type ChatEvent } from '../src/chat/index.js';
import { RedisStore } from '../src/store/redis-store.js';
import { authenticate } from '../src/transports/auth.js';
import { createTokenIssuer } from '../src/transports/tokens.js';
import { describeWithRedis, type RedisInstance, startRedis } from './helpers/redis.js';

/**
 * Identity on the Redis store with two nodes (two stores and two chat cores on one redis-server):
 * the hijack sequence of issue 17 fails at every step, whichever node each step runs on.
 */
describeWithRedis('accounts and sessions across two nodes (Redis)', () => {
  let redis: RedisInstance;
  const stores: RedisStore[] = [];
  const cores: ChatCore[] = [];
  let n = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of cores) await c.shutdown();
    await Promise.allSettled(stores.map((s) => s.close()));
    await redis?.destroy();
  });

  async function twoNodes() {
    const keyPrefix = `id${++n}:`;
    const out: { core: ChatCore; store: RedisStore }[] = [];
    let secret: string | undefined;
    for (let i = 0; i < 2; i++) {
      const store = new RedisStore({ url: redis.url, keyPrefix, nodeId: `id${n}n${i}` });
      await store.open();
      stores.push(store);
      secret ??= await store.sharedSecret('token-hmac', () => 'x'.repeat(43));
      const tokens = createTokenIssuer(secret);
      const core = new ChatCore(store, {
        identity: { guests: 'on', tokens: { sign: tokens.sign!, open: tokens.open! } },
      });
      cores.push(core);
      out.push({ core, store });
    }
    return { a: out[0]!, b: out[1]!, tokens: createTokenIssuer(secret) };
  }

  function collector() {
    const events: ChatEvent[] = [];
    const dms = () => events.flatMap((e) => (e.type === 'dm' ? [`${e.from}:${e.text}`] : []));
    return { events, dms, sink: (e: ChatEvent) => events.push(e) };
  }

  it('the hijack sequence fails at every step', async () => {
    const { a, b, tokens } = await twoNodes();
    const a1 = collector();
    const a2 = collector();
    const bobEvents = collector();
    const alice = await a.core.connect('tcp', a1.sink);
    const reg = await alice.register('alice', 'password-1');
    const aliceOnB = await b.core.connect('ws', a2.sink);
    await aliceOnB.login('alice', 'password-1');
    // bob on the other node cannot become alice.
    const imposter = await b.core.connect('ws', () => {}, 'alice');
    expect(imposter.nick).toBe('guest-alice');
    await imposter.close();
    const bob = await b.core.connect('ws', bobEvents.sink, 'bob');
    expect(bob.nick).toBe('guest-bob');
    await expect(bob.setNick('guest-alice')).resolves.toBeUndefined();
    expect(bob.nick).toBe('guest-alice');
    await expect(bob.register('alice', 'password-x')).rejects.toMatchObject({ code: 'ACCOUNT_EXISTS' });
    // carol's DM reaches both of alice's sessions (one per node), not bob.
    const carol = await b.core.connect('ws', () => {}, 'carol');
    await carol.dm('alice', 'my password is hunter2');
    await vi.waitFor(() => expect(a1.dms()).toEqual(['guest-carol:my password is hunter2']));
    expect(a2.dms()).toEqual(['guest-carol:my password is hunter2']);
    expect(bobEvents.dms()).toEqual([]);
    // A token issued on node A works on node B while the session lives...
    await expect(authenticate(b.core, tokens, reg.token!)).resolves.toMatchObject({ account: 'alice' });
    // ...and not after alice logged out on node A.
    await alice.logout();
    await expect(authenticate(b.core, tokens, reg.token!)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    // Her other session (node B) is untouched and still gets her DMs.
    await carol.dm('alice', 'again');
    await vi.waitFor(() => expect(a2.dms()).toContain('guest-carol:again'));
    expect(a1.dms()).toEqual(['guest-carol:my password is hunter2']);
    // The former holder logs in elsewhere: still only alice's sessions get her mail.
    const back = await a.core.connect('tcp', a1.sink);
    await back.login('alice', 'password-1');
    await carol.dm('alice', 'third');
    await vi.waitFor(() => expect(a1.dms()).toContain('guest-carol:third'));
    expect(bobEvents.dms()).toEqual([]);
  });

  it('a password change on one node ends the sessions on the other at once', async () => {
    const { a, b, tokens } = await twoNodes();
    const onB = collector();
    const first = await a.core.connect('tcp', () => {});
    await first.register('dora', 'password-1');
    const second = await b.core.connect('ws', onB.sink);
    const old = await second.login('dora', 'password-1');
    await second.join('lobby');
    const changed = await first.changePassword('password-1', 'password-2');
    // Node B hears of it over pub/sub: the connection becomes a guest without sending anything.
    await vi.waitFor(() => expect(second.account).toBeUndefined());
    await vi.waitFor(() => expect(second.nick).toMatch(/^guest-/));
    await expect(authenticate(b.core, tokens, old.token!)).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    await expect(authenticate(b.core, tokens, changed.token!)).resolves.toMatchObject({ account: 'dora' });
    // The operator ends the rest from node B.
    expect(await b.core.identity.revokeAccount('dora')).toBe(1);
    await vi.waitFor(() => expect(first.account).toBeUndefined());
    await expect(authenticate(a.core, tokens, changed.token!)).rejects.toMatchObject({
      code: 'SESSION_ENDED',
    });
  });

  it('two sessions of one account on one node: listed until the last leaves', async () => {
    const { a, b } = await twoNodes();
    const s1 = await a.core.connect('tcp', () => {});
    const s2 = await a.core.connect('tcp', () => {});
    await s1.register('ivy', 'password-1');
    await s2.login('ivy', 'password-1');
    await s1.join('lobby');
    await s2.join('lobby');
    await s1.leave('lobby');
    expect(await b.store.members('lobby')).toEqual(['ivy']);
    await s2.leave('lobby');
    expect(await b.store.members('lobby')).toEqual([]);
  });

  it('registration is atomic across nodes', async () => {
    const { a, b } = await twoNodes();
    const results = await Promise.allSettled([
      a.core.identity.register('eve', 'password-1'),
      b.core.identity.register('EVE', 'password-2'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({
      reason: { code: 'ACCOUNT_EXISTS' },
    });
  });
});
