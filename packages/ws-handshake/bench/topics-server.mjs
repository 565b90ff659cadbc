// Server under test for bench/topics.mjs, run in its own process:
//   node bench/topics-server.mjs <net|ws> [--deflate]
// Prints "READY <port>". Every connection joins the topic "bench" (net: ws.subscribe; ws: the
// documented loop over wss.clients). On stdin:
//   "PUB <count> <size>"  publish <count> messages of <size> bytes, one per event-loop turn;
//                         prints "PUBLISHED <json>" with the synchronous time of each publish (µs)
//   "CPU"                 prints "CPU <µs>": user+system CPU since the last PUB started
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer as WSServer } from 'ws';
import { WebSocketServer } from '../dist/index.js';

const impl = process.argv[2];
const deflate = process.argv.includes('--deflate');
const http = createServer((_req, res) => res.end());
let publish;

if (impl === 'net') {
  const wss = new WebSocketServer({
    heartbeatInterval: 0,
    maxBufferedAmount: 256 * 1024 * 1024,
    perMessageDeflate: deflate ? { serverNoContextTakeover: true, threshold: 0 } : false,
  });
  wss.attach(http);
  wss.on('connection', (ws) => ws.subscribe('bench'));
  publish = (data) => wss.publish('bench', data);
} else {
  const wss = new WSServer({
    server: http,
    perMessageDeflate: deflate ? { serverNoContextTakeover: true, threshold: 0 } : false,
  });
  publish = (data) => {
    for (const client of wss.clients) if (client.readyState === 1) client.send(data);
  };
}

http.listen(0, '127.0.0.1', () => console.log(`READY ${http.address().port}`));

let cpuStart = process.cpuUsage();
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, a, b] = line.trim().split(' ');
  if (cmd === 'PUB') {
    const count = Number(a);
    const text = 'x'.repeat(Number(b));
    const times = [];
    cpuStart = process.cpuUsage();
    const one = () => {
      const t0 = performance.now();
      publish(text);
      times.push((performance.now() - t0) * 1000);
      if (times.length < count) setImmediate(one);
      else console.log(`PUBLISHED ${JSON.stringify(times)}`);
    };
    one();
  } else if (cmd === 'CPU') {
    const u = process.cpuUsage(cpuStart);
    console.log(`CPU ${u.user + u.system}`);
  }
});

process.on('SIGINT', () => process.exit(0));
