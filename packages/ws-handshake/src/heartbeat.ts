import { randomBytes } from 'node:crypto';

/** A connection taking part in a heartbeat group. */
export interface HeartbeatMember {
  /** Called on every tick with the payload the ping of this tick carries. */
  _heartbeat(token: Buffer): void;
}

interface Group {
  timer: NodeJS.Timeout;
  members: Set<HeartbeatMember>;
  /**
   * Payload of the current round's pings. Only a pong echoing it proves the peer read our
   * ping: unsolicited pongs or other traffic do not (a peer that floods without reading would
   * otherwise look alive).
   */
  token: Buffer;
}

// One interval per heartbeat period for all connections using it, instead of a timer each.
const groups = new Map<number, Group>();

function tick(interval: number): void {
  const group = groups.get(interval);
  if (group === undefined) return;
  group.token = randomBytes(4);
  for (const member of group.members) member._heartbeat(group.token);
}

export function heartbeatAdd(member: HeartbeatMember, interval: number): void {
  let group = groups.get(interval);
  if (group === undefined) {
    const timer = setInterval(tick, interval, interval);
    timer.unref();
    group = { timer, members: new Set(), token: randomBytes(4) };
    groups.set(interval, group);
  }
  group.members.add(member);
}

export function heartbeatRemove(member: HeartbeatMember, interval: number): void {
  const group = groups.get(interval);
  if (group === undefined) return;
  group.members.delete(member);
  if (group.members.size === 0) {
    clearInterval(group.timer);
    groups.delete(interval);
  }
}

/** Whether a pong answers the current round's ping of this interval's group. */
export function isHeartbeatPong(interval: number, payload: Buffer): boolean {
  const group = groups.get(interval);
  return group?.token.equals(payload) === true;
}
