// A minimal socket.io 4 chat server for the comparison bench (bench/socketio.mjs): WebSocket
// transport only, one room, no persistence. It speaks the demo's JSON frames over socket.io's
// "message" event: welcome on connect, join -> history-end, send -> the room gets a "message"
// frame and the sender an "ack" frame, in the shapes PROTOCOL.md gives. Prints "listening <port>".
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
let seq = 0;
io.on('connection', (socket) => {
  socket.send(JSON.stringify({ type: 'welcome', nick: `guest${socket.id.slice(0, 4)}`, rooms: ['lobby'] }));
  socket.on('message', (raw) => {
    let msg;
    try {
      msg = JSON.parse(String(raw));
    } catch {
      return socket.send('{"type":"error","code":"ERR_BAD_JSON"}');
    }
    if (msg.type === 'join' && msg.room === 'lobby') {
      socket.join('lobby');
      socket.send(JSON.stringify({ type: 'history-end', room: 'lobby', truncated: false }));
    } else if (msg.type === 'send' && msg.room === 'lobby' && typeof msg.text === 'string') {
      const ts = Date.now();
      const id = `${ts}-${seq++}`;
      io.to('lobby').emit(
        'message',
        JSON.stringify({ type: 'message', id, room: 'lobby', nick: 'ada', text: msg.text, ts }),
      );
      if (msg.ref !== undefined)
        socket.send(JSON.stringify({ type: 'ack', ref: msg.ref, id, room: 'lobby', ts }));
    }
  });
});
http.listen(0, '127.0.0.1', () => console.log(`listening ${http.address().port}`));
process.on('SIGTERM', () => process.exit(0));
