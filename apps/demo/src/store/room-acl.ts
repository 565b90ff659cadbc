/**
 * Private rooms: who may read, list and post in them. A room without an ACL is public. Members
 * are principals (account names, compared case-insensitively, stored lower-cased); the owner is
 * always a member. Implemented by the file store (`<dataDir>/rooms.json`) and the Redis store
 * (keys without expiry), so membership survives restarts and is the same on every node.
 */
export interface RoomAcl {
  readonly room: string;
  /** The principal that created the room, as spelled then; the only one who may invite and kick. */
  readonly owner: string;
  /** Lower-cased principals, the owner included. */
  readonly members: readonly string[];
  /** Milliseconds since the epoch. */
  readonly created: number;
}

export interface RoomAclStore {
  /** Make `room` private with `owner` as its only member; false when it is private already. */
  create(room: string, owner: string): Promise<boolean>;
  /** The room's ACL; undefined for a public room. */
  get(room: string): Promise<RoomAcl | undefined>;
  /** ACLs of several rooms (the room list); public rooms are absent from the map. */
  getMany(rooms: readonly string[]): Promise<Map<string, RoomAcl>>;
  /** Add a member; false when the room is not private. */
  addMember(room: string, principal: string): Promise<boolean>;
  /** Remove a member (never the owner); false when it was not one. */
  removeMember(room: string, principal: string): Promise<boolean>;
}

export interface RoomAclLimits {
  /** Private rooms kept at most; creating one more fails. @default 10000 */
  readonly maxPrivateRooms?: number;
  /** Members of one private room at most; inviting one more fails. @default 1000 */
  readonly maxMembers?: number;
}

/** Whether `principal` may use the room: public rooms everyone, private rooms their members. */
export function isMember(acl: RoomAcl | undefined, principal: string | undefined): boolean {
  if (acl === undefined) return true;
  if (principal === undefined) return false;
  const p = principal.toLowerCase();
  return p === acl.owner.toLowerCase() || acl.members.includes(p);
}
