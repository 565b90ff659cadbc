import type { ChatEvent } from '../chat/core.js';
import type { StoredMessage } from '../store/types.js';
import type { EventFrame, WireMessage } from './frames.js';

/** A stored message as the wire shows it; `replay` only when set (history on join or resume). */
export function wireMessage(m: StoredMessage, replay = false): WireMessage {
  const frame: WireMessage = {
    type: 'message',
    id: m.id,
    room: m.room,
    nick: m.nick,
    text: m.text,
    ts: m.ts,
  };
  if (replay) frame.replay = true;
  return frame;
}

/**
 * The frame a chat core event becomes, field by field: renaming a field on either side is a type
 * error here. `nick` has no frame of its own (the server answers the request with the token), so
 * it is undefined.
 */
export function eventFrame(e: ChatEvent): EventFrame | undefined {
  switch (e.type) {
    case 'message':
      return wireMessage(e.message, e.replay);
    case 'joined':
      return e.private
        ? { type: 'joined', room: e.room, members: e.members, count: e.count, private: true }
        : { type: 'joined', room: e.room, members: e.members, count: e.count };
    case 'history-end':
      return { type: 'history-end', room: e.room, count: e.count, truncated: e.truncated };
    case 'left':
      return e.by === undefined ? { type: 'left', room: e.room } : { type: 'left', room: e.room, by: e.by };
    case 'join':
    case 'leave':
      return { type: e.type, room: e.room, nick: e.nick, ts: e.ts };
    case 'rename':
      return { type: 'rename', room: e.room, from: e.from, to: e.to, ts: e.ts };
    case 'typing':
      return { type: 'typing', room: e.room, nick: e.nick, ts: e.ts };
    case 'dm':
      return { type: 'dm', from: e.from, to: e.to, text: e.text, ts: e.ts };
    case 'nick':
      return undefined;
    case 'identity': {
      const frame: EventFrame = { type: 'account', account: e.account ?? null, nick: e.nick };
      if (e.token !== undefined) frame.token = e.token;
      if (e.reason !== undefined) frame.reason = e.reason;
      return frame;
    }
  }
}
