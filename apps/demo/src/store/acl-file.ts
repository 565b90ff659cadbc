import { join } from 'node:path';
import { RoomAclFileError, RoomAclLimitError } from './errors.js';
import type { RoomAcl, RoomAclLimits, RoomAclStore } from './room-acl.js';
import { readStateFile, writeStateFile } from './json-file.js';

interface FileShape {
  v: 1;
  rooms: RoomAcl[];
}

/**
 * The file store's private rooms: held in memory, written as a whole to `<dataDir>/rooms.json`
 * (mode 0600) through a temporary file, fsync and rename after every change, so a crash leaves
 * the old or the new file. A change resolves only once it is on disk; a failed write undoes it.
 */
export class AclFile implements RoomAclStore {
  private readonly path: string;
  private readonly dir: string;
  private readonly maxRooms: number;
  private readonly maxMembers: number;
  private readonly acls = new Map<string, RoomAcl>();
  private writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string, limits: RoomAclLimits = {}) {
    this.dir = dataDir;
    this.path = join(dataDir, 'rooms.json');
    this.maxRooms = limits.maxPrivateRooms ?? 10_000;
    this.maxMembers = limits.maxMembers ?? 1000;
  }

  async open(): Promise<void> {
    const text = await readStateFile(this.dir, this.path);
    if (text === undefined) return;
    let data: FileShape;
    try {
      data = JSON.parse(text) as FileShape;
      if (data.v !== 1 || !Array.isArray(data.rooms)) throw new Error('bad shape');
    } catch (err) {
      // Starting without it would make every private room public: refuse instead.
      throw new RoomAclFileError(`${this.path} is not a readable private-room file; fix or move it away`, {
        cause: err,
      });
    }
    for (const r of data.rooms) {
      if (typeof r?.room === 'string' && typeof r.owner === 'string' && Array.isArray(r.members))
        this.acls.set(r.room, r);
    }
  }

  async create(room: string, owner: string): Promise<boolean> {
    if (this.acls.has(room)) return false;
    if (this.acls.size >= this.maxRooms)
      throw new RoomAclLimitError(`at most ${this.maxRooms} private rooms on this server`);
    const acl: RoomAcl = { room, owner, members: [owner.toLowerCase()], created: Date.now() };
    await this.change(room, acl);
    return true;
  }

  async get(room: string): Promise<RoomAcl | undefined> {
    return this.acls.get(room);
  }

  async getMany(rooms: readonly string[]): Promise<Map<string, RoomAcl>> {
    const out = new Map<string, RoomAcl>();
    for (const room of rooms) {
      const acl = this.acls.get(room);
      if (acl) out.set(room, acl);
    }
    return out;
  }

  async addMember(room: string, principal: string): Promise<boolean> {
    const acl = this.acls.get(room);
    if (!acl) return false;
    const p = principal.toLowerCase();
    if (acl.members.includes(p)) return true;
    if (acl.members.length >= this.maxMembers)
      throw new RoomAclLimitError(`at most ${this.maxMembers} members in a private room`);
    await this.change(room, { ...acl, members: [...acl.members, p] });
    return true;
  }

  async removeMember(room: string, principal: string): Promise<boolean> {
    const acl = this.acls.get(room);
    const p = principal.toLowerCase();
    if (acl === undefined) return false;
    if (!acl.members.includes(p) || p === acl.owner.toLowerCase()) return false;
    await this.change(room, { ...acl, members: acl.members.filter((m) => m !== p) });
    return true;
  }

  /** Apply, write, and undo when the write fails (nothing is granted or revoked that is not on disk). */
  private async change(room: string, next: RoomAcl): Promise<void> {
    const before = this.acls.get(room);
    this.acls.set(room, next);
    try {
      await this.save();
    } catch (err) {
      if (this.acls.get(room) === next) {
        if (before) this.acls.set(room, before);
        else this.acls.delete(room);
      }
      throw err;
    }
  }

  private save(): Promise<void> {
    const next = this.writing.catch(() => {}).then(() => this.write());
    this.writing = next;
    return next;
  }

  private async write(): Promise<void> {
    const data: FileShape = { v: 1, rooms: [...this.acls.values()] };
    await writeStateFile(this.path, data);
  }

  /** Wait for writes in progress (store close). */
  async flush(): Promise<void> {
    await this.writing.catch(() => {});
  }
}
