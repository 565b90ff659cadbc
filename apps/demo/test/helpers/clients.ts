import { connect as tcpConnect, lines } from '@net/tcp';
import { type ClientOptions, connect as wsConnect, type WebSocket } from '@net/ws-handshake';

/** Poll until `check` returns a truthy value; every wait is bounded. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type Frame = Record<string, unknown> & { type: string };

export class WsTestClient {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(JSON.parse(String(d)) as Frame));
    ws.on('close', (code) => {
      this.closeCode = code;
    });
    ws.on('error', () => {});
  }

  static async open(
    httpUrl: string,
    options: { origin?: string; nick?: string; room?: string; connect?: ClientOptions } = {},
  ) {
    const ws = await wsConnect(`${httpUrl.replace(/^http/, 'ws')}/ws`, {
      origin: options.origin ?? httpUrl,
      maxPayload: 4 * 1024 * 1024,
      ...options.connect,
    });
    const c = new WsTestClient(ws);
    await c.next('welcome');
    if (options.nick) {
      c.send({ type: 'nick', nick: options.nick });
      await c.next('nick');
    }
    if (options.room) {
      c.send({ type: 'join', room: options.room });
      await c.next('history-end');
    }
    return c;
  }

  send(frame: unknown): void {
    void this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)).catch(() => {});
  }

  /** Wait for a frame matching type (and predicate) that arrived after `from` (index). */
  async next(
    type: string,
    pred: (f: Frame) => boolean = () => true,
    from = 0,
    timeoutMs = 15_000,
  ): Promise<Frame> {
    return waitFor(
      `frame ${type}`,
      () => this.frames.slice(from).find((f) => f.type === type && pred(f)),
      timeoutMs,
    );
  }

  messages(): Frame[] {
    return this.frames.filter((f) => f.type === 'message');
  }

  async close(): Promise<void> {
    await this.ws.close().catch(() => {});
  }
}

export class TcpTestClient {
  readonly lines: string[] = [];
  closed = false;
  private constructor(readonly conn: Awaited<ReturnType<typeof tcpConnect<string, string>>>) {
    conn.on('message', (l) => this.lines.push(l));
    conn.on('error', () => {});
    conn.on('close', () => {
      this.closed = true;
    });
  }

  static async open(port: number, nick?: string): Promise<TcpTestClient> {
    const conn = await tcpConnect<string, string>({
      host: '127.0.0.1',
      port,
      codec: lines({ maxLineLength: 1024 * 1024 }),
    });
    const c = new TcpTestClient(conn);
    await c.waitLine(/you joined #lobby/);
    if (nick) {
      c.send(`/nick ${nick}`);
      await c.waitLine(new RegExp(`you are now ${nick}`));
    }
    return c;
  }

  send(line: string): void {
    this.conn.write(line);
  }

  /** Raw bytes, not framed by the codec (for hostile input). */
  sendRaw(data: Uint8Array | string): void {
    this.conn.writeRaw(data);
  }

  waitLine(re: RegExp, timeoutMs = 15_000): Promise<string> {
    return waitFor(`line ${re}`, () => this.lines.find((l) => re.test(l)), timeoutMs);
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => {});
  }
}
