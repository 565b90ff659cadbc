import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, Receiver, type ReceiverSink } from '../src/index.js';

/*
 * Receiver.pause()/resume(): a transport holds the parser when a frame it just handled took its
 * outbound queue over the limit. Holding must never lose, duplicate or reorder anything, under
 * any chunking and any pattern of holds, including holds taken from inside a sink callback.
 */

type Event = ['message', string | Buffer] | ['ping', Buffer];

function flat(frame: Buffer | [Buffer, Buffer]): Buffer {
  return Array.isArray(frame) ? Buffer.concat(frame) : frame;
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (buf.length === 0 ? 0 : c % buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(Buffer.from(buf.subarray(prev, p)));
    prev = Math.max(prev, p);
  }
  out.push(Buffer.from(buf.subarray(prev)));
  return out;
}

const item = fc.oneof(
  fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }) }),
  fc.record({ kind: fc.constant('binary' as const), data: fc.uint8Array({ maxLength: 3000 }) }),
  fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }) }),
);

describe('receiver pause/resume', () => {
  it('delivers exactly the same events whatever holds are taken, and none while held', () => {
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        // For each event: hold the parser from inside the callback?
        fc.array(fc.boolean(), { maxLength: 12 }),
        // For each chunk: hold before pushing it, resume after?
        fc.array(fc.boolean(), { maxLength: 30 }),
        (items, cuts, holdInCallback, holdAroundChunk) => {
          const frames: Buffer[] = [];
          const expected: Event[] = [];
          for (const m of items) {
            if (m.kind === 'ping') {
              frames.push(flat(encodeFrame(9, m.data, true, false, true)));
              expected.push(['ping', Buffer.from(m.data)]);
            } else {
              const bytes = m.kind === 'text' ? Buffer.from(m.text) : Buffer.from(m.data);
              frames.push(flat(encodeFrame(m.kind === 'text' ? 1 : 2, bytes, true, false, true)));
              expected.push(['message', m.kind === 'text' ? m.text : bytes]);
            }
          }
          const events: Event[] = [];
          let held = false;
          let receiver: Receiver;
          const after = (): void => {
            expect(held).toBe(false); // nothing is delivered while held
            if (holdInCallback[events.length - 1] === true) {
              held = true;
              receiver.pause();
            }
          };
          const sink: ReceiverSink = {
            onMessage: (d) => {
              events.push(['message', typeof d === 'string' ? d : Buffer.from(d)]);
              after();
            },
            onPing: (d) => {
              events.push(['ping', Buffer.from(d)]);
              after();
            },
            onPong: () => {},
            onClose: () => {},
            onError: (e) => {
              throw e;
            },
          };
          receiver = new Receiver(sink, { isServer: true, maxPayload: 1 << 20 });
          const chunks = split(Buffer.concat(frames), cuts);
          chunks.forEach((chunk, i) => {
            if (holdAroundChunk[i] === true && !held) {
              held = true;
              receiver.pause();
            }
            receiver.push(chunk);
            if (held) {
              held = false;
              receiver.resume();
            }
          });
          while (held) {
            held = false;
            receiver.resume();
          }
          expect(events).toEqual(expected);
          expect(receiver.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stops at the frame that took the hold: the rest of the chunk stays buffered', () => {
    const ping = flat(encodeFrame(9, Buffer.from('p'), true, false, true));
    let pings = 0;
    const receiver: Receiver = new Receiver(
      {
        onMessage: () => {},
        onPing: () => {
          pings++;
          if (pings === 3) receiver.pause();
        },
        onPong: () => {},
        onClose: () => {},
        onError: () => {},
      },
      { isServer: true, maxPayload: 1024 },
    );
    receiver.push(Buffer.concat(Array.from({ length: 10 }, () => ping)));
    expect(pings).toBe(3);
    expect(receiver.bufferedBytes).toBe(7 * ping.length);
    receiver.push(ping); // more input while held is kept, not decoded
    expect(pings).toBe(3);
    receiver.resume();
    expect(pings).toBe(11);
    expect(receiver.bufferedBytes).toBe(0);
  });
});
