import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, parseConfig } from '../src/config.js';

describe('issue 16 options', () => {
  it('has documented defaults', () => {
    expect(parseConfig([], {})).toMatchObject({
      hostNames: [],
      maxConnsPerAddress: 32,
      maxWebSockets: 10_000,
      maxRooms: 1000,
      roomIdleSeconds: 600,
      tlsOnly: false,
    });
    for (const flag of [
      '--host-name',
      '--max-conns-per-address',
      '--max-ws',
      '--max-rooms',
      '--room-idle',
      '--tls-only',
    ])
      expect(helpText()).toContain(flag);
  });

  it('takes --host-name repeated or comma-separated, and env', () => {
    const c = parseConfig(['--host-name', 'a.example,B.example', '--host-name', '10.0.0.5'], {});
    expect(c !== 'help' && c.hostNames).toEqual(['a.example', 'b.example', '10.0.0.5']);
    const e = parseConfig([], { CHAT_HOST_NAME: 'x.example,y.example', CHAT_TLS_ONLY: '1' });
    expect(e).toMatchObject({ hostNames: ['x.example', 'y.example'], tlsOnly: true, tls: true });
  });

  it('--tls-only implies --tls and keeps the other flags', () => {
    expect(parseConfig(['--tls-only', '--tcp-port', '1', '--rate', '2'], {})).toMatchObject({
      tls: true,
      tlsOnly: true,
      tcpPort: 1,
      rate: 2,
    });
  });

  it('refuses bad values', () => {
    expect(() => parseConfig(['--host-name', 'http://x.example'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--host-name', 'x.example:80'], {})).toThrow(/host-name/);
    expect(() => parseConfig(['--host-name', 'ab.cd:80'], {})).toThrow(/host-name/);
    expect(() => parseConfig(['--max-conns-per-address', '0'], {})).toThrow(/max-conns-per-address/);
    expect(() => parseConfig(['--max-ws', '1.5'], {})).toThrow(/whole number/);
    expect(() => parseConfig(['--max-rooms', 'many'], {})).toThrow(ConfigError);
  });
});
