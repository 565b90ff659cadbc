import { type Connection, connect, lines } from '@net/tcp';
import { compareIds } from '../store/types.js';
import type { Link } from './link.js';
import { type Trust, tlsOptions } from './trust.js';

const MESSAGE = /^@(\d+-\d+) (\[([^\]]+)\] .*)$/s;
const UNTAGGED_MESSAGE = /^\[(?!dm\])[^\]]+\] <[^>]+> /;

/**
 * The terminal client over tcp:// or tls:// (the line protocol). It turns on message ids
 * (`/ids on`), remembers the last id per room and, after a reconnect, rejoins each room with
 * `/join ROOM LAST_ID`: the missed messages arrive exactly once (anything already shown is skipped).
 */
export class LineLink implements Link {
  onLine: (line: string) => void = () => {};
  onDrop: (reason: string) => void = () => {};
  onQuit: () => void = () => {};
  private conn: Connection<string, string> | undefined;
  private closed = false;
  private nick: string | undefined;
  private readonly lastIds = new Map<string, string>();
  private readonly rooms = new Set<string>(['lobby']);
  private idsOn = false;

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
    this.idsOn = false;
    conn.on('message', (line) => this.onServerLine(line));
    conn.on('error', () => {});
    conn.on('close', () => {
      if (this.conn !== conn || this.closed) return;
      this.conn = undefined;
      this.onDrop('connection closed');
    });
    conn.write('/ids on');
    if (this.nick) conn.write(`/nick ${this.nick}`);
    for (const room of this.rooms) {
      const after = this.lastIds.get(room);
      conn.write(after ? `/join ${room} ${after}` : `/join ${room}`);
    }
  }

  private onServerLine(line: string): void {
    if (line === '* ids on') {
      this.idsOn = true;
      return;
    }
    const m = MESSAGE.exec(line);
    if (m) {
      const [, id, shown, room] = m as unknown as [string, string, string, string];
      const last = this.lastIds.get(room);
      if (last !== undefined && compareIds(id, last) <= 0) return; // already shown
      this.lastIds.set(room, id);
      this.onLine(shown);
      return;
    }
    // The automatic lobby join replays history before `/ids on` is handled; the explicit rejoin
    // sends it again with ids, so the untagged copy is skipped.
    if (!this.idsOn && (UNTAGGED_MESSAGE.test(line) || /^\* you joined #/.test(line))) return;
    const mine = /^\* you are now (\S+)$/.exec(line);
    if (mine) this.nick = mine[1];
    const joined = /^\* you joined #(\S+)/.exec(line);
    if (joined) this.rooms.add(joined[1]!);
    const left = /^\* you left #(\S+)$/.exec(line);
    if (left) {
      this.rooms.delete(left[1]!);
      this.lastIds.delete(left[1]!);
    }
    this.onLine(line);
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
