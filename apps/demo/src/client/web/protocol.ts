/** Wire types of the WebSocket JSON protocol, version 1 (PROTOCOL.md). Shared by server and clients. */
export const PROTOCOL_VERSION = 1;

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
  | { type: 'joined'; room: string; members: string[]; count: number; ref?: string }
  | { type: 'history-end'; room: string; count: number; truncated: boolean }
  | { type: 'left'; room: string; ref?: string }
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
  | { type: 'bye'; reason: string };

export type ClientFrame =
  | { type: 'nick'; nick: string; ref?: string }
  | { type: 'join'; room: string; after?: string; ref?: string }
  | { type: 'leave'; room: string; ref?: string }
  | { type: 'send'; room: string; text: string; cid?: string; ref?: string }
  | { type: 'dm'; to: string; text: string; ref?: string }
  | { type: 'typing'; room: string }
  | { type: 'who'; room: string; ref?: string }
  | { type: 'rooms'; ref?: string }
  | { type: 'ping'; ref?: string };
