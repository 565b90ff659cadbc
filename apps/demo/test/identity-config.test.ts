import { describe, expect, it } from 'vitest';
import { WsLineTranslator } from '../src/client/ws-lines.js';
import { ConfigError, parseConfig } from '../src/config.js';

describe('identity options', () => {
  it('defaults: guests on, 12 h sessions, no admin endpoint, public reads', () => {
    expect(parseConfig([], {})).toMatchObject({
      guests: 'on',
      sessionTtlSeconds: 43_200,
      adminToken: undefined,
      publicReads: true,
    });
  });

  it('reads flags and environment variables like the other options', () => {
    const env = {
      CHAT_GUESTS: 'off',
      CHAT_SESSION_TTL: '60',
      CHAT_ADMIN_TOKEN: 'a'.repeat(16),
      CHAT_PUBLIC_READS: 'off',
    };
    expect(parseConfig([], env)).toMatchObject({
      guests: 'off',
      sessionTtlSeconds: 60,
      adminToken: 'a'.repeat(16),
      publicReads: false,
    });
    expect(parseConfig(['--guests', 'open', '--public-reads', 'on'], env)).toMatchObject({
      guests: 'open',
      publicReads: true,
    });
  });

  it('refuses bad values with a ConfigError', () => {
    expect(() => parseConfig(['--guests', 'maybe'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--admin-token', 'short'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--session-ttl', '0'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--public-reads', 'yes'], {})).toThrow(ConfigError);
  });
});

describe('the terminal client and accounts', () => {
  it('continues its login session after a reconnect instead of reclaiming a nickname', () => {
    const t = new WsLineTranslator('ada');
    const welcome = {
      type: 'welcome' as const,
      v: 1,
      nick: 'guest-1',
      token: 'g',
      server: 's',
      limits: { maxMessageLength: 2000, maxFrameBytes: 16384, ratePerSecond: 5, burst: 10 },
    };
    expect(t.input('/login ada correct-horse').frames).toEqual([
      { type: 'login', name: 'ada', password: 'correct-horse' },
    ]);
    expect(t.output({ type: 'account', account: 'ada', nick: 'ada', token: 'login-token' }).lines).toEqual([
      '* logged in as ada',
    ]);
    expect(t.input('/token').print).toEqual(['* token for ada: login-token']);
    const resume = t.output({ ...welcome, nick: 'guest-2' }).send ?? [];
    expect(resume[0]).toEqual({ type: 'login', token: 'login-token' });
    expect(resume.some((f) => f.type === 'nick')).toBe(false);
    // Logged out (or ended elsewhere): back to reclaiming the nickname.
    expect(
      t.output({ type: 'account', account: null, nick: 'guest-3', reason: 'your login session has ended' })
        .lines,
    ).toEqual(['* your login session has ended: you are guest-3 (a guest)']);
    const again = t.output({ ...welcome, nick: 'guest-4' }).send ?? [];
    expect(again.some((f) => f.type === 'login')).toBe(false);
  });
});
