#!/usr/bin/env node
// Echo server for conformance suites (Autobahn fuzzingclient and the like):
//   node examples/echo-server.mjs --port 9001 [--host 127.0.0.1] [--deflate]
// Every message goes back as it came: text as text, binary as binary.
import { parseArgs } from 'node:util';
import { createWebSocketServer } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9001' },
    host: { type: 'string', default: '127.0.0.1' },
    deflate: { type: 'boolean', default: false },
    'max-payload': { type: 'string', default: String(64 * 1024 * 1024) },
  },
});

const server = await createWebSocketServer({
  port: Number(values.port),
  host: values.host,
  maxPayload: Number(values['max-payload']),
  maxBufferedAmount: 256 * 1024 * 1024,
  perMessageDeflate: values.deflate ? { threshold: 0 } : false,
  heartbeatInterval: 0,
});

server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
});

console.log(`listening on ${server.url}${values.deflate ? ' (permessage-deflate)' : ''}`);

const shutdown = () => {
  server.close(1001).then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
