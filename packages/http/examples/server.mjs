// A small JSON API with static files, an upgrade hook and graceful shutdown.
// Run after `pnpm --filter @net/http build`: node examples/server.mjs
import { fileURLToPath } from 'node:url';
import { createServer, HttpError, reply, serveStatic } from '../dist/index.js';

const rooms = new Map([['lobby', []]]);
const app = createServer({ bodyLimit: 64 * 1024 });

app.get('/api/rooms', () => [...rooms.keys()]);
app.get('/api/rooms/:room/messages', (ctx) => {
  const messages = rooms.get(ctx.params.room);
  if (!messages) throw new HttpError(404, `No room ${ctx.params.room}`);
  return messages.slice(-Number(ctx.query.limit ?? 50));
});
app.post(
  '/api/rooms/:room/messages',
  async (ctx) => {
    const { text } = await ctx.json();
    if (typeof text !== 'string') throw new HttpError(400, 'text must be a string');
    const list = rooms.get(ctx.params.room) ?? [];
    rooms.set(ctx.params.room, list);
    list.push({ text, at: Date.now() });
    return reply(201, { ok: true });
  },
  { bodyLimit: 4096 },
);
// A WebSocket server would go here: app.upgrade('/ws', (req, socket, head) => wss.handleUpgrade(req, socket, head)).
app.upgrade('/ws', (_req, socket) => {
  socket.end('HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});
app.get('/*', serveStatic(fileURLToPath(new URL('.', import.meta.url))));

const { port } = await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
console.log(`listening on http://127.0.0.1:${port}/api/rooms`);
process.once('SIGINT', () => app.close({ deadline: 5000 }).then(() => console.log('bye')));
