import type { SegmentIndex } from './segments.js';

/** How much history the file store keeps; older messages are dropped from memory and disk. */
export interface RetentionPolicy {
  /** Newest messages kept per room. @default 10000 */
  readonly messages: number;
  /** Messages older than this many days are dropped; undefined: no age limit. */
  readonly days?: number | undefined;
}

export const DEFAULT_RETENTION: RetentionPolicy = { messages: 10_000 };

/**
 * `--retention`: comma-separated `<n>` (messages per room) and/or `<n>d` (days), e.g. `10000`,
 * `30d`, `5000,7d`. Returns an error sentence for anything else.
 */
export function parseRetention(spec: string): RetentionPolicy | string {
  let messages: number | undefined;
  let days: number | undefined;
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const m = /^(\d{1,9})(d?)$/.exec(part);
    if (!m || Number(m[1]) < 1) {
      return `"${part}" is not <messages per room> or <days>d (e.g. 10000, 30d, 10000,30d)`;
    }
    if (m[2] === 'd') {
      if (days !== undefined) return 'days given twice';
      days = Number(m[1]);
    } else {
      if (messages !== undefined) return 'messages given twice';
      messages = Number(m[1]);
    }
  }
  return { messages: messages ?? DEFAULT_RETENTION.messages, days };
}

export function cutoffMs(policy: RetentionPolicy, now: number): number {
  return policy.days === undefined ? Number.NEGATIVE_INFINITY : now - policy.days * 86_400_000;
}

export interface SegmentPlan {
  /** Sealed segments holding retained messages, oldest first. */
  readonly keep: SegmentIndex[];
  /** Sealed segments holding nothing the policy retains: delete them. */
  readonly drop: SegmentIndex[];
  /**
   * Kept segments that are mostly dropped messages, with how many of each room's newest messages
   * in it are retained: rewrite them with only those.
   */
  readonly compact: Map<number, Map<string, number>>;
  /** Rooms some of whose messages are dropped (a resume from before them is `truncated`). */
  readonly truncatedRooms: Set<string>;
}

/**
 * Which sealed segments start-up must read, from their indexes alone. Walks newest to oldest,
 * counting each room's messages until the policy's per-room count is reached; a segment none of
 * whose messages is needed (or all older than the age limit) is dropped. `newer` holds the room
 * counts of what is newer than every sealed segment (the active one).
 */
export function planSegments(
  sealed: readonly SegmentIndex[],
  newer: ReadonlyMap<string, number>,
  policy: RetentionPolicy,
  now: number,
  compactBelow = 0.5,
): SegmentPlan {
  const cutoff = cutoffMs(policy, now);
  const need = new Map<string, number>();
  for (const [room, n] of newer) need.set(room, Math.max(0, policy.messages - n));
  const keep: SegmentIndex[] = [];
  const drop: SegmentIndex[] = [];
  const compact = new Map<number, Map<string, number>>();
  const truncatedRooms = new Set<string>();
  for (let i = sealed.length - 1; i >= 0; i--) {
    const seg = sealed[i]!;
    if (seg.maxTs < cutoff) {
      drop.push(seg);
      for (const [room] of seg.rooms) truncatedRooms.add(room);
      continue;
    }
    let needed = 0;
    const perRoom = new Map<string, number>();
    for (const [room, count] of seg.rooms) {
      const want = need.get(room) ?? policy.messages;
      const take = Math.min(count, want);
      need.set(room, want - take);
      if (take < count) truncatedRooms.add(room);
      if (take > 0) perRoom.set(room, take);
      needed += take;
    }
    if (needed === 0) drop.push(seg);
    else {
      keep.push(seg);
      if (needed < seg.count * compactBelow) compact.set(seg.seq, perRoom);
    }
  }
  keep.reverse();
  return { keep, drop, compact, truncatedRooms };
}
