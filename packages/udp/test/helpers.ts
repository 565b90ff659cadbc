import dgram from 'node:dgram';

/** Waits until `predicate()` is true, polling; rejects after `timeout` ms with `what` in the message. */
export async function waitFor(predicate: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Does a datagram sent to `group` on the loopback interface arrive? Containers often lack the
 * multicast flag on `lo` or drop IGMP; the answer decides which discovery path a test can use.
 */
export async function probeMulticastLoopback(
  group = '239.255.41.235',
): Promise<{ ok: boolean; why: string }> {
  const receiver = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const sender = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      receiver.once('error', reject);
      receiver.bind(0, '0.0.0.0', () => resolve());
    });
    try {
      receiver.addMembership(group, '127.0.0.1');
    } catch (err) {
      return { ok: false, why: `addMembership(${group}, 127.0.0.1) failed: ${(err as Error).message}` };
    }
    await new Promise<void>((resolve) => sender.bind(0, () => resolve()));
    try {
      sender.setMulticastInterface('127.0.0.1');
      sender.setMulticastLoopback(true);
    } catch (err) {
      return { ok: false, why: `setMulticastInterface(127.0.0.1) failed: ${(err as Error).message}` };
    }
    const arrived = new Promise<boolean>((resolve) => {
      receiver.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 1000);
    });
    for (let i = 0; i < 3; i++) sender.send('probe', receiver.address().port, group);
    return (await arrived)
      ? { ok: true, why: 'multicast on lo works' }
      : { ok: false, why: 'a datagram sent to the group on lo never arrived' };
  } finally {
    receiver.close();
    sender.close();
  }
}

/** Does a datagram sent to 127.255.255.255 with SO_BROADCAST arrive on loopback? */
export async function probeBroadcastLoopback(): Promise<{ ok: boolean; why: string }> {
  const receiver = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const sender = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => receiver.bind(0, '0.0.0.0', () => resolve()));
    await new Promise<void>((resolve) => sender.bind(0, () => resolve()));
    sender.setBroadcast(true);
    const arrived = new Promise<boolean>((resolve) => {
      receiver.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 1000);
    });
    sender.on('error', () => {});
    for (let i = 0; i < 3; i++) sender.send('probe', receiver.address().port, '127.255.255.255', () => {});
    return (await arrived)
      ? { ok: true, why: 'broadcast on lo works' }
      : { ok: false, why: 'a datagram broadcast to 127.255.255.255 never arrived' };
  } finally {
    receiver.close();
    sender.close();
  }
}

/** Can we bind and talk over ::1? */
export async function probeIPv6(): Promise<boolean> {
  const socket = dgram.createSocket('udp6');
  try {
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(0, '::1', () => {
        socket.once('message', () => resolve(true));
        socket.send('probe', socket.address().port, '::1', (err) => {
          if (err) resolve(false);
        });
        setTimeout(() => resolve(false), 1000);
      });
    });
    return ok;
  } finally {
    socket.close();
  }
}

/** A small deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

export interface LossyRelay {
  port: number;
  forwarded: number;
  dropped: number;
  /** Datagrams sent twice. */
  duplicated: number;
  /** Datagrams held back so that later ones overtook them. */
  delayed: number;
  /** Datagrams that were forwarded while an earlier one was still held back. */
  overtook: number;
  close(): Promise<void>;
}

export interface RelayFaults {
  /** Fraction of datagrams dropped, in each direction. */
  loss: number;
  /** Fraction of the forwarded datagrams sent a second time a little later. @default 0 */
  duplicate?: number;
  /** Fraction of the forwarded datagrams held back 5–60 ms so later ones overtake them. @default 0 */
  reorder?: number;
}

/**
 * A real UDP relay between one client and one server that drops, duplicates and reorders datagrams
 * in each direction. The fate of a datagram depends only on the seed, its direction, its bytes and
 * how many identical datagrams came before, never on timing or random ids, so a seed replays the
 * same faults even when the machine is busy and retransmissions interleave differently.
 */
export async function createLossyRelay(
  serverPort: number,
  faults: number | RelayFaults,
  seed: number,
): Promise<LossyRelay> {
  const { loss, duplicate = 0, reorder = 0 } = typeof faults === 'number' ? { loss: faults } : faults;
  const socket = dgram.createSocket('udp4');
  const seen = new Map<string, number>();
  let client: { port: number; address: string } | undefined;
  let held = 0;
  const timers = new Set<NodeJS.Timeout>();
  const relay: LossyRelay = {
    port: 0,
    forwarded: 0,
    dropped: 0,
    duplicated: 0,
    delayed: 0,
    overtook: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        socket.close(() => resolve());
      }),
  };
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  socket.on('message', (data, rinfo) => {
    const fromServer = rinfo.port === serverPort;
    if (!fromServer) client = { port: rinfo.port, address: rinfo.address };
    // Request ids are random per run, so key on the payload after the 8-byte request header.
    const body = data.subarray(8);
    const key = `${fromServer ? 's' : 'c'}${body.toString('hex')}`;
    const occurrence = (seen.get(key) ?? 0) + 1;
    seen.set(key, occurrence);
    const random = mulberry32(
      seed ^ fnv1a(body) ^ Math.imul(occurrence, 0x9e3779b9) ^ (fromServer ? 0x5bd1e995 : 0),
    );
    if (random() < loss) {
      relay.dropped++;
      return;
    }
    const twice = random() < duplicate;
    const delay = random() < reorder ? 5 + Math.floor(random() * 55) : 0;
    const forward = (): void => {
      relay.forwarded++;
      if (fromServer) {
        if (client) socket.send(data, client.port, client.address);
      } else socket.send(data, serverPort, '127.0.0.1');
    };
    if (delay > 0) {
      relay.delayed++;
      held++;
      later(delay, () => {
        held--;
        forward();
      });
    } else {
      if (held > 0) relay.overtook++;
      forward();
    }
    if (twice) {
      relay.duplicated++;
      later(delay + 1 + Math.floor(random() * 20), forward);
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  relay.port = socket.address().port;
  return relay;
}
