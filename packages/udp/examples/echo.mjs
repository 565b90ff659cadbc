// Echo server and client on loopback: promise bind/send, for-await over datagrams.
import { createSocket } from '@net/udp';

const server = createSocket('udp4');
const { port } = await server.bind(0, '127.0.0.1');
const serving = (async () => {
  for await (const { data, rinfo } of server) await server.send(data, rinfo.port, rinfo.address);
})();

const client = createSocket('udp4');
await client.bind(0, '127.0.0.1');
const reply = new Promise((resolve) => client.once('message', resolve));
await client.send('hello', port, '127.0.0.1');
console.log('echo:', (await reply).toString());

await Promise.all([client.close(), server.close()]);
await serving;
