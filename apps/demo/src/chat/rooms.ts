import type { ChatStore, RoomCount } from '../store/types.js';
import { ChatError } from './errors.js';
import type { Clock } from './limits.js';

export interface RoomPage {
  rooms: RoomCount[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/**
 * Which rooms this node holds, to bound them: at most `max` rooms, and a room without members
 * that saw no activity for `idleMs` is dropped from memory (its store copy via `evictRoom`).
 * The default room never expires.
 */
export class RoomRegistry {
  /** Room name to the time of its last join, leave or message. */
  private readonly lastActive = new Map<string, number>();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly store: ChatStore,
    private readonly defaultRoom: string,
    readonly max: number,
    readonly idleMs: number,
    private readonly now: Clock,
  ) {}

  get size(): number {
    return this.lastActive.size;
  }

  /** Rooms that exist in the store at start (history on disk) count against the cap too. */
  private load(): Promise<void> {
    this.loaded ??= this.store.rooms().then(
      (rooms) => {
        const t = this.now();
        for (const r of rooms) if (!this.lastActive.has(r.room)) this.lastActive.set(r.room, t);
      },
      (err: unknown) => {
        // The store is away (Redis restarting): fail this call, try again on the next one.
        this.loaded = undefined;
        throw err;
      },
    );
    return this.loaded;
  }

  /** A join or a post to `room`: refused with ROOM_LIMIT when it would create one room too many. */
  async admit(room: string): Promise<void> {
    try {
      await this.load();
    } catch (err) {
      throw new ChatError('STORE_FAILED', `room list unavailable: ${(err as Error).message}`);
    }
    if (!this.lastActive.has(room) && room !== this.defaultRoom && this.lastActive.size >= this.max) {
      await this.expireIdle();
      if (this.lastActive.size >= this.max) {
        throw new ChatError(
          'ROOM_LIMIT',
          `this server holds at most ${this.max} rooms; join an existing one`,
        );
      }
    }
    this.touch(room);
  }

  touch(room: string): void {
    this.lastActive.delete(room);
    this.lastActive.set(room, this.now());
  }

  /** Drops empty rooms idle for `idleMs`; returns their names. */
  async expireIdle(): Promise<string[]> {
    await this.load();
    const cutoff = this.now() - this.idleMs;
    const dropped: string[] = [];
    // Map order is least recently active first: stop at the first room that is still fresh.
    for (const [room, at] of [...this.lastActive]) {
      if (at > cutoff) break;
      if (room === this.defaultRoom) continue;
      const members = this.store.memberCount
        ? await this.store.memberCount(room)
        : (await this.store.members(room)).length;
      if (members > 0) continue;
      this.lastActive.delete(room);
      await this.store.evictRoom?.(room);
      dropped.push(room);
    }
    return dropped;
  }

  /** One page of the room list, ordered by name. */
  async page(after: string | undefined, limit: number): Promise<RoomPage> {
    const all = [...(await this.store.rooms())].sort((a, b) =>
      a.room < b.room ? -1 : a.room > b.room ? 1 : 0,
    );
    const start = after === undefined ? 0 : all.findIndex((r) => r.room > after);
    const rest = start === -1 ? [] : all.slice(start);
    const rooms = rest.slice(0, limit);
    return rest.length > limit ? { rooms, next: rooms[rooms.length - 1]!.room } : { rooms };
  }
}
