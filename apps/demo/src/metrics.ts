/**
 * Counters for GET /metrics, rendered in the Prometheus text exposition format (version 0.0.4).
 * Hand-rolled: a handful of metric families do not justify a client library.
 */
export class Metrics {
  private readonly connections = new Map<string, number>();
  private readonly messagesIn = new Map<string, number>();
  private readonly messagesOut = new Map<string, number>();
  private readonly rejected = new Map<string, number>();
  private readonly startedAt = Date.now();

  connectionOpened(transport: string): void {
    bump(this.connections, transport, 1);
  }
  connectionClosed(transport: string): void {
    bump(this.connections, transport, -1);
  }
  messageIn(transport: string): void {
    bump(this.messagesIn, transport, 1);
  }
  messageOut(transport: string, count = 1): void {
    bump(this.messagesOut, transport, count);
  }
  rejectedInput(transport: string, reason: string): void {
    bump(this.rejected, `${transport}\u0000${reason}`, 1);
  }
  connectionCount(transport?: string): number {
    if (transport) return this.connections.get(transport) ?? 0;
    let n = 0;
    for (const v of this.connections.values()) n += v;
    return n;
  }

  /** `store`: the store's health at scrape time, exposed as `chat_store_up{store}` (1 or 0). */
  render(store?: { readonly store: string; readonly ok: boolean }): string {
    const out: string[] = [];
    if (store) {
      out.push('# HELP chat_store_up Whether the message store is reachable (1) or not (0).');
      out.push('# TYPE chat_store_up gauge');
      out.push(`chat_store_up{store="${esc(store.store)}"} ${store.ok ? 1 : 0}`);
    }
    family(out, 'chat_connections', 'gauge', 'Open client connections by transport.', this.connections);
    family(out, 'chat_messages_in_total', 'counter', 'Chat messages received from clients.', this.messagesIn);
    family(
      out,
      'chat_messages_out_total',
      'counter',
      'Chat messages delivered to clients.',
      this.messagesOut,
    );
    out.push('# HELP chat_rejected_inputs_total Inputs refused (bad frames, limits, rate limit).');
    out.push('# TYPE chat_rejected_inputs_total counter');
    for (const [key, v] of this.rejected) {
      const [transport, reason] = key.split('\u0000');
      out.push(`chat_rejected_inputs_total{transport="${esc(transport!)}",reason="${esc(reason!)}"} ${v}`);
    }
    out.push('# HELP chat_uptime_seconds Seconds since the server started.');
    out.push('# TYPE chat_uptime_seconds gauge');
    out.push(`chat_uptime_seconds ${((Date.now() - this.startedAt) / 1000).toFixed(1)}`);
    const mem = process.memoryUsage();
    out.push('# HELP process_resident_memory_bytes Resident memory size in bytes.');
    out.push('# TYPE process_resident_memory_bytes gauge');
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    out.push('# HELP nodejs_heap_used_bytes V8 heap in use.');
    out.push('# TYPE nodejs_heap_used_bytes gauge');
    out.push(`nodejs_heap_used_bytes ${mem.heapUsed}`);
    return `${out.join('\n')}\n`;
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function family(out: string[], name: string, type: string, help: string, map: Map<string, number>): void {
  out.push(`# HELP ${name} ${help}`);
  out.push(`# TYPE ${name} ${type}`);
  for (const [transport, v] of map) out.push(`${name}{transport="${esc(transport)}"} ${v}`);
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
