/**
 * Wire types of the WebSocket JSON protocol, version 1 (PROTOCOL.md). The server sessions, the
 * terminal client and the web page all import them from here, so a field cannot drift.
 */
export const PROTOCOL_VERSION = 1;

/** The room every client starts in (and falls back to); the server's core uses it as its default. */
export const DEFAULT_ROOM = 'lobby';

export interface WireMessage {
  type: 'message';
  id: string;
  room: string;
  nick: string;
  text: string;
  ts: number;
  replay?: boolean;
}

export type ServerFrame =
  | {
      type: 'welcome';
      v: number;
      nick: string;
      token: string;
      server: string;
      limits: { maxMessageLength: number; maxFrameBytes: number; ratePerSecond: number; burst: number };
    }
  | { type: 'nick'; nick: string; token: string; ref?: string }
  | { type: 'joined'; room: string; members: string[]; count: number; private?: boolean; ref?: string }
  | { type: 'history-end'; room: string; count: number; truncated: boolean }
  /** `by`: the private room's owner removed you. */
  | { type: 'left'; room: string; by?: string; ref?: string }
  | { type: 'invited'; room: string; name: string; ref?: string }
  | { type: 'kicked'; room: string; name: string; ref?: string }
  | WireMessage
  | { type: 'ack'; ref?: string; cid?: string; id?: string; room?: string; ts: number }
  | { type: 'join' | 'leave'; room: string; nick: string; ts: number }
  | { type: 'rename'; room: string; from: string; to: string; ts: number }
  | { type: 'typing'; room: string; nick: string; ts: number }
  | { type: 'dm'; from: string; to: string; text: string; ts: number }
  | { type: 'who'; room: string; members: string[]; ref?: string }
  | { type: 'rooms'; rooms: { room: string; members: number }[]; ref?: string }
  | { type: 'pong'; ref?: string }
  | { type: 'error'; code: string; message: string; ref?: string; cid?: string }
  | { type: 'bye'; reason: string }
  | {
      type: 'account';
      /** The account now logged in; null: a guest. */
      account: string | null;
      nick: string;
      /** Bound to the new login session (none for a guest). */
      token?: string;
      /** Why this connection is a guest again. */
      reason?: string;
      ref?: string;
    };

/** Frames produced by the chat core's events (the rest answer requests). */
export type EventFrame = Extract<
  ServerFrame,
  {
    type:
      | 'message'
      | 'joined'
      | 'history-end'
      | 'left'
      | 'join'
      | 'leave'
      | 'rename'
      | 'typing'
      | 'dm'
      | 'account';
  }
>;

export type ClientFrame =
  | { type: 'nick'; nick: string; ref?: string }
  | { type: 'join'; room: string; after?: string; ref?: string }
  | { type: 'leave'; room: string; ref?: string }
  | { type: 'send'; room: string; text: string; cid?: string; ref?: string }
  | { type: 'dm'; to: string; text: string; ref?: string }
  | { type: 'typing'; room: string }
  | { type: 'who'; room: string; ref?: string }
  | { type: 'rooms'; ref?: string }
  | { type: 'ping'; ref?: string }
  | { type: 'create'; room: string; private?: boolean; ref?: string }
  | { type: 'invite'; room: string; name: string; ref?: string }
  | { type: 'kick'; room: string; name: string; ref?: string }
  | { type: 'register'; name: string; password: string; ref?: string }
  | { type: 'login'; name: string; password: string; ref?: string }
  | { type: 'login'; token: string; ref?: string }
  | { type: 'logout'; ref?: string }
  | { type: 'password'; old: string; new: string; ref?: string };

/** A room as the server names it: `#` stripped, lower case (clients key their state by this). */
export function normalizeRoom(room: string): string {
  return (room.startsWith('#') ? room.slice(1) : room).toLowerCase();
}
