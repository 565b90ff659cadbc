import { ChatError } from './errors.js';
import { applyTextPolicy } from './text-policy.js';

const NICK_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,23}$/;
const ROOM_RE = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;

export function checkNick(nick: string): string {
  if (!NICK_RE.test(nick)) {
    throw new ChatError(
      'NICK_INVALID',
      'nickname must be 1-24 characters: letters, digits, _ . - (not starting with . or -)',
    );
  }
  return nick;
}

/** Rooms are case-insensitive: the canonical name is lower case. */
export function checkRoom(room: string): string {
  const name = room.startsWith('#') ? room.slice(1).toLowerCase() : room.toLowerCase();
  if (!ROOM_RE.test(name)) {
    throw new ChatError('ROOM_INVALID', 'room name must be 1-32 characters: a-z, 0-9, _ . -');
  }
  return name;
}

/** Returns the text as it is stored (whitespace runs collapsed, see text-policy.ts). */
export function checkText(text: string, maxLength: number): string {
  if (text.trim().length === 0) throw new ChatError('TEXT_EMPTY', 'message is empty');
  if (text.length > maxLength) {
    throw new ChatError('TEXT_TOO_LONG', `message is longer than ${maxLength} characters`);
  }
  return applyTextPolicy(text);
}

/** Longest client message id (`cid`). */
export const MAX_CID = 64;
// Printable ASCII without spaces: it becomes part of a store key and is echoed verbatim.
const CID_RE = /^[\x21-\x7e]{1,64}$/;

/** A client message id: 1-64 printable ASCII characters, no spaces. */
export function checkCid(cid: string): string {
  if (!CID_RE.test(cid)) {
    throw new ChatError('CID_INVALID', `cid must be 1-${MAX_CID} printable ASCII characters without spaces`);
  }
  return cid;
}
