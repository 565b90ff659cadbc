import { RoomAclLimitError } from './errors.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import type { RoomAcl, RoomAclLimits, RoomAclStore } from './room-acl.js';

export interface RedisAclOptions extends RoomAclLimits {
  readonly keys: RedisKeys;
  /** Command connection. */
  readonly link: RedisLink;
  /** How long an operation waits for Redis to come back. */
  readonly waitMs: number;
}

/**
 * Private rooms in Redis, shared by every node and kept without expiry: a hash per room (`owner`,
 * `created`; HSETNX on `owner` decides who created it, atomically across nodes) and a set of its
 * lower-cased members. The owner counts as a member even if the set misses it (a node that died
 * between the two writes), so a room never loses its owner.
 */
export class RedisAcl implements RoomAclStore {
  private readonly o: RedisAclOptions;
  private readonly maxRooms: number;
  private readonly maxMembers: number;

  constructor(options: RedisAclOptions) {
    this.o = options;
    this.maxRooms = options.maxPrivateRooms ?? 10_000;
    this.maxMembers = options.maxMembers ?? 1000;
  }

  private deadline(): number {
    return Date.now() + this.o.waitMs;
  }

  async create(room: string, owner: string): Promise<boolean> {
    const d = this.deadline();
    const k = this.o.keys;
    const count = await this.o.link.call(['SCARD', k.privateRooms()], d);
    if (typeof count === 'number' && count >= this.maxRooms)
      throw new RoomAclLimitError(`at most ${this.maxRooms} private rooms on this server`);
    if ((await this.o.link.call(['HSETNX', k.acl(room), 'owner', owner], d)) !== 1) {
      // A retried HSETNX whose first attempt did land answers 0: the room is still ours.
      const holder = await this.o.link.call(['HGET', k.acl(room), 'owner'], d);
      if (holder !== owner) return false;
    }
    await this.o.link.call(['HSET', k.acl(room), 'created', String(Date.now())], d);
    await this.o.link.call(['SADD', k.aclMembers(room), owner.toLowerCase()], d);
    await this.o.link.call(['SADD', k.privateRooms(), room], d);
    return true;
  }

  async get(room: string): Promise<RoomAcl | undefined> {
    const d = this.deadline();
    const [hash, members] = await Promise.all([
      this.o.link.call(['HMGET', this.o.keys.acl(room), 'owner', 'created'], d),
      this.o.link.call(['SMEMBERS', this.o.keys.aclMembers(room)], d),
    ]);
    return toAcl(room, hash, members);
  }

  async getMany(rooms: readonly string[]): Promise<Map<string, RoomAcl>> {
    const out = new Map<string, RoomAcl>();
    if (rooms.length === 0) return out;
    const d = this.deadline();
    // Only rooms in the private set need their ACL read: one SMISMEMBER for the whole list.
    const flags = await this.o.link.call(['SMISMEMBER', this.o.keys.privateRooms(), ...rooms], d);
    const privateRooms = rooms.filter((_, i) => Array.isArray(flags) && flags[i] === 1);
    const acls = await Promise.all(privateRooms.map((r) => this.get(r)));
    privateRooms.forEach((room, i) => {
      const acl = acls[i];
      if (acl) out.set(room, acl);
    });
    return out;
  }

  async addMember(room: string, principal: string): Promise<boolean> {
    const d = this.deadline();
    const k = this.o.keys;
    if ((await this.o.link.call(['HEXISTS', k.acl(room), 'owner'], d)) !== 1) return false;
    const count = await this.o.link.call(['SCARD', k.aclMembers(room)], d);
    if (typeof count === 'number' && count >= this.maxMembers)
      throw new RoomAclLimitError(`at most ${this.maxMembers} members in a private room`);
    await this.o.link.call(['SADD', k.aclMembers(room), principal.toLowerCase()], d);
    return true;
  }

  async removeMember(room: string, principal: string): Promise<boolean> {
    const d = this.deadline();
    const owner = await this.o.link.call(['HGET', this.o.keys.acl(room), 'owner'], d);
    const p = principal.toLowerCase();
    if (typeof owner !== 'string' || owner.toLowerCase() === p) return false;
    return (await this.o.link.call(['SREM', this.o.keys.aclMembers(room), p], d)) === 1;
  }
}

function toAcl(room: string, hash: unknown, members: unknown): RoomAcl | undefined {
  if (!Array.isArray(hash)) return undefined;
  const [owner, created] = hash;
  if (typeof owner !== 'string') return undefined;
  const list = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
  if (!list.includes(owner.toLowerCase())) list.push(owner.toLowerCase());
  return { room, owner, members: list.sort(), created: Number(created ?? 0) };
}
