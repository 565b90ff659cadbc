// The load generator's WebSocket client for bench/socketio.mjs: one net.Socket, a hand-written
// upgrade and a minimal frame reader, so both servers are driven by the same cheap code and the
// generator (one core) is not what limits the measurement. It handles what these two servers send:
// unfragmented text frames, ping (answered with pong), close. Frames it sends are masked (RFC 6455
// 5.3). Text frames reach `onFrame(buf, start, end)` as a byte range of the read buffer (no copy,
// no string), with the connection as fourth argument (frames can arrive with the 101 response,
// before the promise hands the connection out); `text(buf, start, end)` decodes one when needed.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const MAX_FRAME = 1 << 20;

export const text = (buf, start, end) => buf.toString('utf8', start, end);

/**
 * Opens ws://host:port/path; resolves with { send(string), close(), socket } once the server
 * answered 101. `onFrame` may be replaced later through `conn.onFrame = ...`.
 */
export function openRaw({ host, port, path, origin, timeoutMs = 30_000 }, onFrame) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const key = randomBytes(16).toString('base64');
    let pending = null; // unread bytes (a partial frame or the upgrade response)
    let upgraded = false;
    const conn = {
      socket,
      onFrame,
      send(s) {
        socket.write(frame(0x1, Buffer.from(s, 'utf8')));
      },
      close() {
        socket.destroy();
      },
    };
    const fail = (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`upgrade of ${path} timed out`)), timeoutMs);
    socket.once('error', (err) => (upgraded ? undefined : fail(err)));
    socket.on('error', () => {});
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      if (!upgraded) {
        const eoh = buf.indexOf('\r\n\r\n');
        if (eoh === -1) {
          if (buf.length > 16_384) return fail(new Error('upgrade response too long'));
          pending = buf;
          return;
        }
        const head = buf.toString('latin1', 0, eoh);
        if (!head.startsWith('HTTP/1.1 101'))
          return fail(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        upgraded = true;
        clearTimeout(timer);
        resolve(conn);
        buf = buf.subarray(eoh + 4);
      }
      let off = 0;
      while (buf.length - off >= 2) {
        const b0 = buf[off];
        const b1 = buf[off + 1];
        if (b1 & 0x80) return socket.destroy(new Error('masked frame from server'));
        let len = b1 & 0x7f;
        let hdr = 2;
        if (len === 126) {
          if (buf.length - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          hdr = 4;
        } else if (len === 127) {
          if (buf.length - off < 10) break;
          len = buf.readUIntBE(off + 4, 6);
          hdr = 10;
        }
        if (len > MAX_FRAME) return socket.destroy(new Error('frame too large'));
        const start = off + hdr;
        const end = start + len;
        if (end > buf.length) break;
        const opcode = b0 & 0x0f;
        if ((b0 & 0x80) === 0 || opcode === 0) return socket.destroy(new Error('fragmented frame'));
        if (opcode === 0x1) conn.onFrame(buf, start, end, conn);
        else if (opcode === 0x9) socket.write(frame(0xa, buf.subarray(start, end)));
        else if (opcode === 0x8) return socket.destroy();
        off = end;
      }
      if (off < buf.length) pending = buf.subarray(off);
    });
  });
}

function frame(opcode, payload) {
  const len = payload.length;
  const hdr = len < 126 ? 6 : len < 65_536 ? 8 : 14;
  const out = Buffer.allocUnsafe(hdr + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  const mask = randomBytes(4);
  mask.copy(out, hdr - 4);
  for (let i = 0; i < len; i++) out[hdr + i] = payload[i] ^ mask[i & 3];
  return out;
}
