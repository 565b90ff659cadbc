import { isMember, type RoomAcl } from '../store/room-acl.js';
import type { ChatCore } from './core.js';
import { ChatError } from './errors.js';
import { checkRoom } from './validate.js';

/**
 * Private rooms (`/create ROOM private`, `/invite NAME`, `/kick NAME`): the rules, kept apart from
 * the session mechanics in core.ts. Every check asks the store (file or Redis, so the same on every
 * node) for the room's ACL and compares it with the caller's principal, which comes from
 * {@link ChatCore.principal} only.
 */

/** The room's ACL (undefined: public); store failures become STORE_FAILED. */
export async function roomAcl(core: ChatCore, room: string): Promise<RoomAcl | undefined> {
  try {
    return await core.store.acls.get(room);
  } catch (err) {
    throw core.clientError(err, 'acl');
  }
}

export function notInvited(room: string): ChatError {
  return new ChatError('NOT_INVITED', `#${room} is a private room: its owner has to /invite you`);
}

/** Refuses with NOT_INVITED unless `principal` may use the room (public rooms: anyone). */
export async function assertMayUse(
  core: ChatCore,
  room: string,
  principal: string | undefined,
): Promise<RoomAcl | undefined> {
  const acl = await roomAcl(core, room);
  if (!isMember(acl, principal)) throw notInvited(room);
  return acl;
}

/** Whether anything of the room exists already: the default room, members, or history. */
async function roomExists(core: ChatCore, room: string): Promise<boolean> {
  if (room === core.defaultRoom) return true;
  try {
    if ((await core.memberCount(room)) > 0) return true;
    if ((await core.store.acls.get(room)) !== undefined) return true;
    return (await core.store.read(room, { limit: 1 })).messages.length > 0;
  } catch (err) {
    throw core.clientError(err, 'acl');
  }
}

/**
 * Make a new room private with `owner` as its only member. Only a room that does not exist yet
 * (no history, nobody in it): a public room cannot be taken over and closed to its users.
 */
export async function createPrivate(
  core: ChatCore,
  room: string,
  owner: string | undefined,
): Promise<string> {
  const name = checkRoom(room);
  if (owner === undefined)
    throw new ChatError('LOGIN_REQUIRED', 'only a logged-in account can create a private room: /login first');
  if (await roomExists(core, name))
    throw new ChatError('ROOM_EXISTS', `#${name} exists already; a private room needs a new name`);
  let created: boolean;
  try {
    created = await core.store.acls.create(name, owner);
  } catch (err) {
    throw core.clientError(err, 'acl');
  }
  if (!created)
    throw new ChatError('ROOM_EXISTS', `#${name} exists already; a private room needs a new name`);
  return name;
}

/** The private room's ACL when `principal` owns it: NOT_PRIVATE / NOT_OWNER otherwise. */
async function owned(core: ChatCore, room: string, principal: string | undefined): Promise<RoomAcl> {
  const acl = await roomAcl(core, room);
  if (!acl) throw new ChatError('NOT_PRIVATE', `#${room} is public: everyone may join it`);
  if (principal === undefined || principal.toLowerCase() !== acl.owner.toLowerCase())
    throw new ChatError('NOT_OWNER', `only the owner of #${room} (${acl.owner}) can do that`);
  return acl;
}

/** Add a registered account to a private room the caller owns; resolves with its name as registered. */
export async function invite(
  core: ChatCore,
  room: string,
  principal: string | undefined,
  name: string,
): Promise<string> {
  const r = checkRoom(room);
  await owned(core, r, principal);
  let account: string | undefined;
  try {
    account = (await core.identity.account(name))?.name;
    if (account === undefined) throw new ChatError('NO_SUCH_ACCOUNT', `there is no account "${name}"`);
    await core.store.acls.addMember(r, account);
  } catch (err) {
    throw core.clientError(err, 'acl');
  }
  return account;
}

/**
 * Remove a member from a private room the caller owns, and make its connections on every node
 * leave the room (a `kick` event through the store). Resolves with the principal removed.
 */
export async function kick(
  core: ChatCore,
  room: string,
  principal: string | undefined,
  by: string,
  name: string,
): Promise<string> {
  const r = checkRoom(room);
  const acl = await owned(core, r, principal);
  const target = name.toLowerCase();
  if (target === acl.owner.toLowerCase())
    throw new ChatError('NOT_OWNER', `the owner of #${r} cannot be removed from it`);
  try {
    if (!(await core.store.acls.removeMember(r, target)))
      throw new ChatError('NOT_A_MEMBER', `${name} is not a member of #${r}`);
    await core.store.publish({ kind: 'kick', room: r, principal: target, by, ts: Date.now() });
  } catch (err) {
    throw core.clientError(err, 'acl');
  }
  return name;
}
