// Server under test, run in its own process by bench/run.mjs:
//   node --expose-gc bench/server.mjs <net|net-bytes|ws|ws-native|floor> <echo|broadcast|idle>
// Prints "READY <port>". In broadcast mode a connection to /control triggers a broadcast of
// every message it sends. On stdin "MEM" it prints memory usage (after GC) as JSON, on "CPU" the
// process CPU time. `ws` is run with WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE set by the runner
// (pure JS); `ws-native` is the same code with bufferutil and utf-8-validate loadable.
// `floor` (echo only) is a minimal unvalidated echo on node:net: see floor.mjs. `net-bytes` is
// ours with `textAsBuffer: true` (text handed out as its bytes, as `ws` does, so not decoded).
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer as WSServer } from 'ws';
import { handleUpgrade, WebSocketServer } from '../dist/index.js';

const [impl, mode] = process.argv.slice(2);
const http =
  impl === 'floor' ? (await import('./floor.mjs')).floorServer() : createServer((_req, res) => res.end());
const MAX = 64 * 1024 * 1024;

if (impl === 'net' || impl === 'net-bytes') {
  const wss = new WebSocketServer({
    maxPayload: MAX,
    maxBufferedAmount: 256 * 1024 * 1024,
    textAsBuffer: impl === 'net-bytes',
  });
  if (mode === 'broadcast') {
    http.on('upgrade', (req, socket, head) => {
      if (req.url === '/control') {
        handleUpgrade(req, socket, head, { heartbeatInterval: 0 }).then((ctl) => {
          ctl?.on('message', (data) => wss.broadcast(data));
        });
      } else {
        wss.handleUpgrade(req, socket, head);
      }
    });
  } else {
    wss.attach(http);
    if (mode === 'echo') {
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => {
          ws.send(data, { binary: isBinary });
        });
      });
    }
  }
} else if (impl === 'floor') {
  if (mode !== 'echo') throw new Error('the floor server only echoes');
} else {
  const wss = new WSServer({ noServer: true, maxPayload: MAX, perMessageDeflate: false });
  const control = new WSServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    if (mode === 'broadcast' && req.url === '/control') {
      control.handleUpgrade(req, socket, head, (ctl) => {
        // The documented ws idiom for broadcasting.
        ctl.on('message', (data, isBinary) => {
          for (const client of wss.clients) {
            if (client.readyState === 1) client.send(data, { binary: isBinary });
          }
        });
      });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      wss.emit('connection', ws, req);
    });
  });
  if (mode === 'echo') {
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
    });
  }
}

http.listen(0, '127.0.0.1', () => {
  console.log(`READY ${http.address().port}`);
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'CPU') {
    const c = process.cpuUsage();
    console.log(`CPU ${c.user + c.system}`);
  }
  if (line.trim() === 'MEM') {
    for (let i = 0; i < 3; i++) globalThis.gc?.();
    const m = process.memoryUsage();
    console.log(`MEM ${JSON.stringify(m)}`);
  }
});

// Exit through process.exit so --cpu-prof can write its profile.
process.on('SIGINT', () => process.exit(0));
