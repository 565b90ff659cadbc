import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.js';

describe('server configuration', () => {
  it('has zero-configuration defaults', () => {
    expect(parseConfig([], {})).toMatchObject({
      host: '0.0.0.0',
      tcpPort: 8124,
      httpPort: 8080,
      udpPort: 41234,
      tlsTcpPort: 8125,
      httpsPort: 8443,
      dataDir: './.chat-data',
      tls: false,
      history: 50,
      origins: [],
      redis: undefined,
      logLevel: 'info',
    });
  });

  it('reads environment variables and lets flags win', () => {
    const env = {
      CHAT_HTTP_PORT: '9000',
      CHAT_TCP_PORT: '9001',
      CHAT_TLS: 'true',
      CHAT_ORIGIN: 'https://a.example,http://b.example:81',
    };
    const c = parseConfig(['--tcp-port', '0', '--history', '7'], env);
    expect(c).toMatchObject({ httpPort: 9000, tcpPort: 0, tls: true, history: 7 });
    expect(c !== 'help' && c.origins).toEqual(['https://a.example', 'http://b.example:81']);
    expect(
      parseConfig(['--origin', 'https://x.example', '--origin', 'https://y.example'], env),
    ).toMatchObject({
      origins: ['https://x.example', 'https://y.example'],
    });
  });

  it('refuses bad values with a clear error instead of guessing', () => {
    expect(() => parseConfig(['--tcp-port', '70000'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--http-port', 'eighty'], {})).toThrow(/not a port/);
    expect(() => parseConfig(['--log-level', 'loud'], {})).toThrow(/log-level/);
    expect(() => parseConfig(['--origin', 'javascript:alert(1)'], {})).toThrow(/origin/);
    expect(() => parseConfig(['--no-such-flag'], {})).toThrow(ConfigError);
    expect(parseConfig(['--help'], {})).toBe('help');
  });
});
