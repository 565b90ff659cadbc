import { connect, type WebSocket } from '@net/ws-handshake';
import type { ClientFrame, ServerFrame } from '../protocol/frames.js';
import type { Link } from './link.js';
import { type Trust, tlsOptions } from './trust.js';
import { WsLineTranslator } from './ws-lines.js';

/** The terminal client over ws:// or wss:// (JSON protocol), resuming rooms from the last ids. */
export class WsLink implements Link {
  onLine: (line: string) => void = () => {};
  onDrop: (reason: string) => void = () => {};
  onQuit: () => void = () => {};
  private ws: WebSocket | undefined;
  private closed = false;
  private readonly translator: WsLineTranslator;

  constructor(
    private readonly url: URL,
    nick: string | undefined,
    private readonly trust: Trust,
  ) {
    this.translator = new WsLineTranslator(nick);
  }

  async connect(): Promise<void> {
    const secure = this.url.protocol === 'wss:';
    const ws = await connect(this.url, {
      timeout: 10_000,
      maxPayload: 1024 * 1024,
      // wss: HTTP/2 (RFC 8441) when the server offers it by ALPN, else the HTTP/1.1 upgrade.
      ...(secure ? { tls: tlsOptions(this.url.hostname, this.trust), http2: 'auto' as const } : {}),
    });
    this.ws = ws;
    ws.on('message', (data) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as ServerFrame;
      } catch {
        this.onLine('! unreadable frame from server');
        return;
      }
      const { lines, send, retry } = this.translator.output(frame);
      for (const l of lines) this.onLine(l);
      for (const f of send ?? []) this.send(f);
      if (retry) this.scheduleRetry(retry.cid, retry.delayMs);
    });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = undefined;
      this.onDrop(`${code}${reason ? ` ${reason}` : ''}`);
    });
  }

  /**
   * Resend a message refused with STORE_FAILED after its backoff, unless it was acked meanwhile.
   * While disconnected the frame goes nowhere, and the reconnect resends it anyway.
   */
  private scheduleRetry(cid: string, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (this.closed) return;
      const frame = this.translator.outbox.resend(cid);
      if (frame) this.send(frame);
    }, delayMs);
    this.retries.add(timer);
  }

  private readonly retries = new Set<NodeJS.Timeout>();

  private send(frame: ClientFrame): void {
    this.ws?.send(JSON.stringify(frame)).catch(() => {});
  }

  /** Messages typed but not acknowledged by the server yet. */
  get unacked(): number {
    return this.translator.outbox.size;
  }

  input(line: string): void {
    const { frames, print, quit } = this.translator.input(line);
    for (const f of frames) this.send(f);
    for (const p of print ?? []) this.onLine(p);
    if (quit) this.onQuit();
  }

  close(): void {
    this.closed = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    void this.ws?.close(1000, 'bye').catch(() => {});
  }
}
