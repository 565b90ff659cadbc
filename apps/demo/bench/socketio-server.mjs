// A minimal socket.io 4 chat server for the comparison bench (bench/socketio.mjs), written the way
// a socket.io chat usually is: WebSocket transport only, one room, no persistence, events with
// socket.io's own acknowledgements. On connection it emits `welcome` { nick, rooms }; `join`
// { room } joins and acknowledges { room, truncated }; `send` { room, text } broadcasts `message`
// { id, room, nick, text, ts } to the room (the sender too) and acknowledges { id, room, ts }:
// the same fields as the demo's `message` and `ack` frames (PROTOCOL.md). Text is checked as
// cheaply as a typical server does (a string, at most 2,000 characters). Prints "listening <port>".
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const ROOM = 'lobby';
const MAX_TEXT = 2000;
const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  // Same incoming frame limit as the demo's /ws (16 KiB).
  maxHttpBufferSize: 16 * 1024,
});
let guests = 0;
let seq = 0;
let lastTs = 0;
io.on('connection', (socket) => {
  const nick = `guest${++guests}`;
  socket.emit('welcome', { nick, rooms: [ROOM] });
  socket.on('join', (msg, ack) => {
    if (typeof ack !== 'function') return;
    if (msg?.room !== ROOM) return ack({ error: 'NO_SUCH_ROOM' });
    socket.join(ROOM);
    ack({ room: ROOM, truncated: false });
  });
  socket.on('send', (msg, ack) => {
    if (typeof ack !== 'function') return;
    if (msg?.room !== ROOM || !socket.rooms.has(ROOM)) return ack({ error: 'NOT_IN_ROOM' });
    if (typeof msg.text !== 'string' || msg.text.length === 0 || msg.text.length > MAX_TEXT)
      return ack({ error: 'TEXT_INVALID' });
    const ts = Date.now();
    // Ids shaped like the demo's: "<ms>-<seq within that ms>".
    seq = ts === lastTs ? seq + 1 : 0;
    lastTs = ts;
    const id = `${ts}-${seq}`;
    io.to(ROOM).emit('message', { id, room: ROOM, nick, text: msg.text, ts });
    ack({ id, room: ROOM, ts });
  });
});
http.listen(0, '127.0.0.1', () => console.log(`listening ${http.address().port}`));
process.on('SIGTERM', () => process.exit(0));
