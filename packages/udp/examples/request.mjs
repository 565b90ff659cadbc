// Request/response with retries: the responder runs the handler once per request id.
import { createRequester, createSocket, serve } from '@net/udp';

const server = createSocket('udp4');
const { port } = await server.bind(0, '127.0.0.1');
serve(server, (data) => `pong: ${data}`);

const client = createSocket('udp4');
await client.bind(0, '127.0.0.1');
const requester = createRequester(client);
const reply = await requester.request('ping', { port, host: '127.0.0.1', timeout: 2000, retries: 3 });
console.log(reply.data.toString(), `(attempts: ${reply.attempts})`);

await Promise.all([client.close(), server.close()]);
