// Preloaded into a bench server (`node --import ./server-hooks.mjs server.js`, set by
// BENCH_SERVER_HOOKS=1 in bench/socketio.mjs): event-loop delay and garbage collection, printed to
// stderr as one JSON line when the process exits, for the profile write-up.
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const gc = { count: 0, ms: 0, maxMs: 0, byKind: {} };
const KINDS = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental', 8: 'weak-callbacks' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.ms += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
    const k = KINDS[e.detail?.kind] ?? String(e.detail?.kind);
    gc.byKind[k] = (gc.byKind[k] ?? 0) + e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const started = performance.now();
process.on('exit', () => {
  const ms = (ns) => Number((ns / 1e6).toFixed(2));
  process.stderr.write(
    `server-hooks ${JSON.stringify({
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      loopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      gc: { ...gc, ms: Number(gc.ms.toFixed(1)), maxMs: Number(gc.maxMs.toFixed(2)) },
      heapUsedMiB: Number((process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)),
    })}\n`,
  );
});
