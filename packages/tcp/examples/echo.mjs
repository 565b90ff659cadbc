import { connect, createServer, lines } from '@net/tcp';

const server = createServer({ codec: lines() }, async (conn) => {
  conn.writeRaw('welcome! type something\n'); // raw bytes, no framing
  for await (const line of conn) await conn.send(`echo: ${line}`);
});
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

const client = await connect({ port, host: '127.0.0.1', codec: lines() });
await client.send('hello, 世界');
for await (const line of client) {
  console.log(line); // "welcome! type something", then "echo: hello, 世界"
  if (line.startsWith('echo:')) break;
}
await client.end();
await server.close();
