import { type DirectEvent, directAddress, type RoomCount, type Unsubscribe } from './types.js';

/**
 * In-process presence and nickname ownership, shared by the single-node store. Nicknames are
 * keyed case-insensitively; the display spelling is kept for member lists.
 */
export class LocalPresence {
  private readonly nicks = new Map<string, string>();
  private readonly direct = new Map<string, Set<(event: DirectEvent) => void>>();
  private readonly roomMembers = new Map<string, Map<string, string>>();
  /**
   * How many connections hold each member entry: one account's sessions share a name, and the
   * name stays listed until the last of them leaves. room -> lower-cased nick -> count.
   */
  private readonly holders = new Map<string, Map<string, number>>();

  /** `defaultRoom` is always listed by rooms(), even when empty. */
  constructor(private readonly defaultRoom: string) {}

  claimNick(nick: string, owner: string): boolean {
    const key = nick.toLowerCase();
    const holder = this.nicks.get(key);
    if (holder !== undefined && holder !== owner) return false;
    this.nicks.set(key, owner);
    return true;
  }

  releaseNick(nick: string, owner: string): void {
    const key = nick.toLowerCase();
    if (this.nicks.get(key) === owner) this.nicks.delete(key);
  }

  nickHeldBy(nick: string, owner: string): boolean {
    return this.nicks.get(nick.toLowerCase()) === owner;
  }

  nickTaken(nick: string): boolean {
    return this.nicks.has(nick.toLowerCase());
  }

  sendDirect(event: DirectEvent): boolean {
    const listeners = this.direct.get(directAddress(event));
    if (!listeners || listeners.size === 0) return false;
    for (const l of [...listeners]) l(event);
    return true;
  }

  subscribeDirect(address: string, listener: (event: DirectEvent) => void): Unsubscribe {
    const key = address.toLowerCase();
    let set = this.direct.get(key);
    if (!set) this.direct.set(key, (set = new Set()));
    set.add(listener);
    const s = set;
    return () => {
      s.delete(listener);
      if (s.size === 0 && this.direct.get(key) === s) this.direct.delete(key);
    };
  }

  addMember(room: string, nick: string): void {
    let m = this.roomMembers.get(room);
    if (!m) this.roomMembers.set(room, (m = new Map()));
    const key = nick.toLowerCase();
    m.set(key, nick);
    let h = this.holders.get(room);
    if (!h) this.holders.set(room, (h = new Map()));
    h.set(key, (h.get(key) ?? 0) + 1);
  }

  removeMember(room: string, nick: string): void {
    const m = this.roomMembers.get(room);
    if (!m) return;
    const key = nick.toLowerCase();
    const h = this.holders.get(room);
    const left = (h?.get(key) ?? 1) - 1;
    if (left > 0) {
      h!.set(key, left);
      return;
    }
    h?.delete(key);
    if (h?.size === 0) this.holders.delete(room);
    m.delete(key);
    if (m.size === 0) this.roomMembers.delete(room);
  }

  memberCount(room: string): number {
    return this.roomMembers.get(room)?.size ?? 0;
  }

  members(room: string): string[] {
    const m = this.roomMembers.get(room);
    if (!m) return [];
    return [...m.values()].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  }

  rooms(withHistory: Iterable<string>): RoomCount[] {
    const names = new Set<string>([this.defaultRoom, ...withHistory, ...this.roomMembers.keys()]);
    return [...names].sort().map((room) => ({ room, members: this.roomMembers.get(room)?.size ?? 0 }));
  }
}
