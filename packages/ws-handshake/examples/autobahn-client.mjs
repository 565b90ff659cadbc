#!/usr/bin/env node
// Our client driven by the Autobahn fuzzingserver URL protocol:
//   node examples/autobahn-client.mjs --url ws://127.0.0.1:9001 --agent net [--no-deflate]
// 1. GET /getCaseCount (a text message with the count)
// 2. for each case: /runCase?case=N&agent=AGENT, echoing every message until the server closes
// 3. /updateReports?agent=AGENT
import { parseArgs } from 'node:util';
import { connect } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://127.0.0.1:9001' },
    agent: { type: 'string', default: 'net' },
    'no-deflate': { type: 'boolean', default: false },
    cases: { type: 'string' },
  },
});

const base = values.url.replace(/\/+$/, '');
const agent = encodeURIComponent(values.agent);
const options = {
  maxPayload: 64 * 1024 * 1024,
  maxBufferedAmount: 256 * 1024 * 1024,
  perMessageDeflate: values['no-deflate'] ? false : { threshold: 0 },
  timeout: 30_000,
};

async function open(path) {
  return connect(`${base}${path}`, options);
}

async function caseCount() {
  const ws = await open('/getCaseCount');
  let count = 0;
  ws.on('message', (data) => {
    count = Number(data);
  });
  await ws.whenClosed();
  return count;
}

async function runCase(n) {
  let ws;
  try {
    ws = await open(`/runCase?case=${n}&agent=${agent}`);
  } catch (error) {
    console.log(`case ${n}: handshake failed: ${error.message}`);
    return;
  }
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  await ws.whenClosed();
  console.log(`case ${n}: closed ${ws.closeCode}${ws.closeError ? ` (${ws.closeError.code})` : ''}`);
}

const total = await caseCount();
console.log(`${total} cases`);
const only = values.cases ? values.cases.split(',').map(Number) : null;
for (let n = 1; n <= total; n++) {
  if (only && !only.includes(n)) continue;
  await runCase(n);
}
const reports = await open(`/updateReports?agent=${agent}`);
await reports.whenClosed();
console.log('reports updated');
