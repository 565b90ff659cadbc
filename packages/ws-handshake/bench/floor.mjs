// The floor row: a minimal, unvalidated WebSocket echo written directly on node:net. It does the
// handshake, unmasks each client frame and writes it back unmasked, one write per message. No UTF-8
// check, no limits, no control frames, no fragmentation, no close handshake: it is not a server
// anyone should run, only the least work an echo can do in Node, so the bench shows which part of
// a difference is the library and which part is the two system calls every message costs.
import { createHash } from 'node:crypto';
import net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function floorServer() {
  return net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending = null;
    let open = false;
    socket.on('data', (chunk) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          pending = buf;
          return;
        }
        const key = /sec-websocket-key:\s*(\S+)/i.exec(buf.subarray(0, end).toString('latin1'));
        if (key === null) return socket.destroy();
        const accept = createHash('sha1')
          .update(key[1] + GUID)
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        open = true;
        buf = buf.subarray(end + 4);
      }
      let pos = 0;
      while (buf.length - pos >= 6) {
        let len = buf[pos + 1] & 127;
        let head = 2;
        if (len === 126) {
          if (buf.length - pos < 8) break;
          len = buf.readUInt16BE(pos + 2);
          head = 4;
        } else if (len === 127) {
          if (buf.length - pos < 14) break;
          len = Number(buf.readBigUInt64BE(pos + 2));
          head = 10;
        }
        if (buf.length - pos < head + 4 + len) break;
        const maskAt = pos + head;
        const out = Buffer.allocUnsafe(head + len);
        out[0] = buf[pos];
        out[1] = head === 2 ? len : head === 4 ? 126 : 127;
        if (head === 4) out.writeUInt16BE(len, 2);
        else if (head === 10) out.writeBigUInt64BE(BigInt(len), 2);
        for (let i = 0; i < len; i++) out[head + i] = buf[maskAt + 4 + i] ^ buf[maskAt + (i & 3)];
        socket.write(out);
        pos = maskAt + 4 + len;
      }
      if (pos < buf.length) pending = buf.subarray(pos);
    });
    socket.on('error', () => socket.destroy());
  });
}
