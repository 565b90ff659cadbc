import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  connect,
  createServer,
  FrameTooLargeError,
  FrameAbortedError,
  FrameStream,
  lengthPrefixed,
  type Server,
  SendStreamActiveError,
  TruncatedFrameError,
} from '../src/index.js';
import { sleep, waitFor, within } from './helpers.js';

type StreamConn = Connection<Buffer | FrameStream, unknown>;

// Memory is measured after a full GC: garbage waiting for the collector is not memory the stream
// holds, and how much of it piles up differs between Node versions (Node 24 let 100 MiB collect).
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
/** Heap + ArrayBuffers still reachable right now. */
function retained(): number {
  // Twice: external memory freed by one collection is only accounted for after the next.
  collect();
  collect();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const header = (length: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
};
const small = (text: string): Buffer => Buffer.concat([header(Buffer.byteLength(text)), Buffer.from(text)]);

/** Writes `length` bytes of `pattern` repeated, honouring backpressure: the sender holds one buffer. */
async function sendPattern(socket: net.Socket, pattern: Buffer, length: number): Promise<void> {
  for (let sent = 0; sent < length; ) {
    const n = Math.min(pattern.length, length - sent);
    if (!socket.write(n === pattern.length ? pattern : pattern.subarray(0, n))) await once(socket, 'drain');
    sent += n;
  }
}

describe("lengthPrefixed({ frames: 'stream' }) over loopback", () => {
  const servers: Server<unknown, never>[] = [];
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close({ deadline: 0 })));
  });

  async function serve(
    onConnection: (conn: StreamConn) => void,
    options: Parameters<typeof lengthPrefixed>[0] = { frames: 'stream' },
  ): Promise<net.Socket> {
    const server = createServer(
      { codec: lengthPrefixed({ ...options, frames: 'stream' }), idleTimeout: 0 },
      (conn) => onConnection(conn as StreamConn),
    );
    servers.push(server as unknown as Server<unknown, never>);
    const { port } = await server.listen({ host: '127.0.0.1' });
    const socket = net.connect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    await once(socket, 'connect');
    return socket;
  }

  it('receives a 512 MiB frame (32x the buffered-mode limit) intact with bounded memory', async () => {
    const size = 512 * 1024 * 1024;
    const pattern = randomBytes(1024 * 1024 + 7); // odd length: chunk and pattern edges never align
    let received = 0;
    let mismatch = -1;
    let peak = 0;
    const before = retained();
    const done = new Promise<FrameStream>((resolve) => {
      void serve((conn) => {
        conn.once('message', async (message) => {
          expect(message).toBeInstanceOf(FrameStream);
          const stream = message as FrameStream;
          expect(stream.length).toBe(size);
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            // Compare with the pattern at this offset, piece by piece across its wrap-around.
            for (let at = 0; at < chunk.length && mismatch < 0; ) {
              const p = (received + at) % pattern.length;
              const n = Math.min(chunk.length - at, pattern.length - p);
              if (pattern.compare(chunk, at, at + n, p, p + n) !== 0) mismatch = received + at;
              at += n;
            }
            received += chunk.length;
            if ((received & 0x1ffffff) < chunk.length) peak = Math.max(peak, retained() - before);
          }
          resolve(stream);
        });
      }).then(async (socket) => {
        socket.write(header(size));
        await sendPattern(socket, pattern, size);
      });
    });
    await within(done, 120_000, 'the streamed frame');
    expect(mismatch).toBe(-1);
    expect(received).toBe(size);
    // What stays reachable never grew by more than 1/16 of the frame (typically a few MiB).
    expect(peak).toBeLessThan(size / 16);
  }, 150_000);

  it('keeps the socket paused while a streamed frame is not read (backpressure), then delivers it all', async () => {
    const size = 256 * 1024 * 1024;
    let stream: FrameStream | undefined;
    let server: StreamConn | undefined;
    const socket = await serve((conn) => {
      server = conn;
      conn.once('message', (m) => {
        stream = m as FrameStream;
      });
    });
    socket.write(header(size));
    const sending = sendPattern(socket, Buffer.alloc(1024 * 1024, 1), size);
    await within(
      waitFor(() => stream !== undefined),
      10_000,
      'the FrameStream',
    );
    await sleep(500); // the sender keeps writing; the receiver must stop reading
    const readWhileIdle = server!.bytesRead;
    expect(readWhileIdle).toBeLessThan(16 * 1024 * 1024);
    let total = 0;
    for await (const chunk of stream! as AsyncIterable<Buffer>) total += chunk.length;
    await sending;
    expect(total).toBe(size);
  }, 60_000);

  it('delivers small frames as Buffers and large ones as FrameStreams, in wire order', async () => {
    const got: string[] = [];
    const done = new Promise<void>((resolve) => {
      void serve(
        async (conn) => {
          for await (const m of conn) {
            if (m instanceof FrameStream) {
              let n = 0;
              for await (const c of m as AsyncIterable<Buffer>) n += c.length;
              got.push(`stream:${n}`);
            } else got.push(`buffer:${m.toString()}`);
            if (got.length === 4) break;
          }
          resolve();
        },
        { frames: 'stream', streamThreshold: 1000 },
      ).then((socket) => {
        socket.write(Buffer.concat([small('a'), header(5000), Buffer.alloc(5000), small('b'), header(1000)]));
        socket.write(Buffer.alloc(1000));
      });
    });
    await within(done, 10_000, 'four messages');
    expect(got).toEqual(['buffer:a', 'stream:5000', 'buffer:b', 'stream:1000']);
  });

  it('fails the stream with ERR_TRUNCATED_FRAME when the peer ends mid-frame', async () => {
    let conn: StreamConn | undefined;
    const failed = new Promise<Error>((resolve) => {
      void serve((c) => {
        conn = c;
        c.once('message', (m) => {
          const s = m as FrameStream;
          s.resume();
          s.on('close', () => resolve(s.errored as Error));
        });
      }).then((socket) => {
        socket.write(header(10 * 1024 * 1024));
        socket.end(Buffer.alloc(1024 * 1024));
      });
    });
    const error = await within(failed, 10_000, 'stream error');
    expect(error).toBeInstanceOf(TruncatedFrameError);
    expect((error as TruncatedFrameError).code).toBe('ERR_TRUNCATED_FRAME');
    expect(await within(conn!.closed, 10_000, 'close')).toBeInstanceOf(TruncatedFrameError);
  });

  it('fails the stream with ERR_FRAME_ABORTED (cause: the socket error) when the connection is reset mid-frame', async () => {
    const failed = new Promise<Error>((resolve) => {
      void serve((c) => {
        c.once('message', (m) => {
          const s = m as FrameStream;
          s.on('error', resolve);
          s.resume();
        });
      }).then(async (socket) => {
        socket.write(header(10 * 1024 * 1024));
        socket.write(Buffer.alloc(64 * 1024));
        await sleep(100);
        socket.resetAndDestroy();
      });
    });
    const error = await within(failed, 10_000, 'stream error');
    expect(error).toBeInstanceOf(FrameAbortedError);
    expect((error as FrameAbortedError).code).toBe('ERR_FRAME_ABORTED');
    expect((error as FrameAbortedError).missingBytes).toBe(10 * 1024 * 1024 - 64 * 1024);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });

  it('an unread stream aborted by destroy() does not crash the process and reports ERR_FRAME_ABORTED', async () => {
    const aborted = new Promise<FrameStream>((resolve) => {
      void serve((c) => {
        c.once('message', (m) => {
          const s = m as FrameStream; // no 'error' listener, never read
          s.on('close', () => resolve(s));
          setTimeout(() => c.destroy(), 50);
        });
      }).then((socket) => {
        socket.write(header(1024 * 1024 * 1024));
        socket.write(Buffer.alloc(1024));
      });
    });
    const stream = await within(aborted, 10_000, 'close');
    expect((stream.errored as FrameAbortedError | null)?.code).toBe('ERR_FRAME_ABORTED');
  });

  it('drops the rest of a frame whose stream the reader destroyed, and goes on with the next frame', async () => {
    const next = new Promise<string>((resolve) => {
      void serve(
        (c) => {
          c.on('message', (m) => {
            // Destroyed once full, i.e. while it holds the socket paused.
            if (m instanceof FrameStream) setTimeout(() => m.destroy(), 200);
            else resolve(m.toString());
          });
        },
        { frames: 'stream', streamThreshold: 1024 },
      ).then(async (socket) => {
        socket.write(header(32 * 1024 * 1024));
        await sendPattern(socket, Buffer.alloc(1024 * 1024), 32 * 1024 * 1024);
        socket.write(Buffer.concat([header(1), Buffer.from('z')]));
      });
    });
    expect(await within(next, 30_000, 'the frame after the dropped one')).toBe('z');
  });

  async function streamServer(streamThreshold?: number): Promise<{
    port: number;
    messages: (Buffer | FrameStream)[];
    counts: number[];
  }> {
    const messages: (Buffer | FrameStream)[] = [];
    const counts: number[] = [];
    const server = createServer(
      { codec: lengthPrefixed({ frames: 'stream', streamThreshold }), idleTimeout: 0 },
      async (conn) => {
        for await (const m of conn) {
          messages.push(m);
          if (m instanceof FrameStream) {
            let n = 0;
            m.on('error', () => {});
            for await (const c of m as AsyncIterable<Buffer>) n += c.length;
            counts.push(n);
          }
        }
      },
    );
    servers.push(server as unknown as Server<unknown, never>);
    const { port } = await server.listen({ host: '127.0.0.1' });
    return { port, messages, counts };
  }

  it('sendStream() sends a 256 MiB frame from an async source with bounded memory; the next send follows it', async () => {
    const { port, messages, counts } = await streamServer();
    const client = await connect({ port, host: '127.0.0.1', codec: lengthPrefixed({ frames: 'stream' }) });
    const size = 256 * 1024 * 1024;
    const piece = randomBytes(1024 * 1024);
    const before = retained();
    let peak = 0;
    async function* source() {
      for (let sent = 0; sent < size; sent += piece.length) {
        if (sent % (32 * piece.length) === 0) peak = Math.max(peak, retained() - before);
        yield piece;
      }
    }
    await within(client.sendStream(size, source()), 60_000, 'sendStream');
    await client.send('after');
    await within(
      waitFor(() => messages.length === 2 && counts.length === 1),
      60_000,
      'both messages',
    );
    expect(counts).toEqual([size]);
    expect(String(messages[1])).toBe('after');
    // Sender and receiver share this process; what they hold together stays far below the frame.
    expect(peak).toBeLessThan(size / 8);
    await client.end();
  }, 90_000);

  it('sendStream() refuses other sends meanwhile, a frame over maxFrameLength up front, and a short source by destroying the connection', async () => {
    const { port, messages } = await streamServer(0);
    const client = await connect({
      port,
      host: '127.0.0.1',
      codec: lengthPrefixed({ frames: 'stream', maxFrameLength: 1024 * 1024 }),
    });
    await expect(client.sendStream(2 * 1024 * 1024, [])).rejects.toBeInstanceOf(FrameTooLargeError);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* short() {
      yield Buffer.alloc(1000);
      await gate;
    }
    const streaming = client.sendStream(5000, short());
    await sleep(20);
    expect(() => client.write('x')).toThrow(SendStreamActiveError);
    await expect(client.sendStream(1, [Buffer.alloc(1)])).rejects.toMatchObject({
      code: 'ERR_SEND_STREAM_ACTIVE',
    });
    release();
    await expect(streaming).rejects.toMatchObject({ code: 'ERR_INVALID_FRAME' });
    expect(client.state).toBe('closed');
    // The server saw the frame start and then lose its sender mid-payload.
    await within(
      waitFor(() => messages.length === 1),
      10_000,
      'the FrameStream',
    );
    const stream = messages[0] as FrameStream;
    await within(
      waitFor(() => stream.destroyed),
      10_000,
      'the stream to fail',
    );
    expect(['ERR_TRUNCATED_FRAME', 'ERR_FRAME_ABORTED']).toContain(
      (stream.errored as { code?: string }).code,
    );
  });
});
