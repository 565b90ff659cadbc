// LAN discovery. On a real LAN omit discoveryPort/host/interfaces: the defaults use the
// multicast group 239.255.41.234 on UDP port 41234 with a broadcast fallback. Here the query is
// sent straight to 127.0.0.1 on a free port so the example runs anywhere.
import { announce, discover } from '@net/udp';

const server = await announce({
  service: 'net-chat',
  port: 8080,
  meta: { ws: 'ws://host:8080/ws' },
  discoveryPort: 0,
  interfaces: ['127.0.0.1'],
});
const found = await discover({
  service: 'net-chat',
  host: '127.0.0.1',
  discoveryPort: server.discoveryPort,
  limit: 1,
});
console.log(found.map((s) => `${s.service} at ${s.host}:${s.port} ${JSON.stringify(s.meta)}`));
await server.close();
