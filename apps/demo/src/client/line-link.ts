import { type Connection, connect, lines } from '@net/tcp';
import type { Link } from './link.js';
import { type Trust, tlsOptions } from './trust.js';

/**
 * The terminal client over tcp:// or tls:// (the line protocol). On reconnect it reclaims its
 * nickname and rooms; the server replays recent history on join.
 */
export class LineLink implements Link {
  onLine: (line: string) => void = () => {};
  onDrop: (reason: string) => void = () => {};
  onQuit: () => void = () => {};
  private conn: Connection<string, string> | undefined;
  private closed = false;
  private nick: string | undefined;
  private readonly rooms = new Set<string>();
  private everConnected = false;

  constructor(
    private readonly url: URL,
    nick: string | undefined,
    private readonly trust: Trust,
  ) {
    this.nick = nick;
  }

  async connect(): Promise<void> {
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.url.port || (this.url.protocol === 'tls:' ? 8125 : 8124));
    const conn = await connect<string, string>({
      host,
      port,
      codec: lines({ maxLineLength: 64 * 1024 }),
      connectTimeout: 10_000,
      ...(this.url.protocol === 'tls:' ? { tls: tlsOptions(host, this.trust) } : {}),
    });
    this.conn = conn;
    const resume = this.everConnected;
    this.everConnected = true;
    conn.on('message', (line) => {
      const mine = /^\* you are now (\S+)$/.exec(line);
      if (mine) this.nick = mine[1];
      const joined = /^\* you joined #(\S+)/.exec(line);
      if (joined) this.rooms.add(joined[1]!);
      const left = /^\* you left #(\S+)$/.exec(line);
      if (left) this.rooms.delete(left[1]!);
      this.onLine(line);
    });
    conn.on('error', () => {});
    conn.on('close', () => {
      if (this.conn !== conn || this.closed) return;
      this.conn = undefined;
      this.onDrop('connection closed');
    });
    if (this.nick) conn.write(`/nick ${this.nick}`);
    if (resume) for (const room of this.rooms) if (room !== 'lobby') conn.write(`/join ${room}`);
  }

  input(line: string): void {
    if (line.trim().toLowerCase() === '/quit') {
      void this.conn?.end('/quit');
      this.onQuit();
      return;
    }
    if (!this.conn) {
      this.onLine('! not connected');
      return;
    }
    this.conn.write(line);
  }

  close(): void {
    this.closed = true;
    void this.conn?.end();
  }
}
