export {
  type ChatCoreOptions,
  ChatCore,
  type ChatEvent,
  type ChatSink,
  type PostClient,
  type RateLimiter,
  Session,
} from './core.js';
export { ChatError, type ChatErrorCode } from './errors.js';
export { checkCid, checkNick, checkRoom, checkText, MAX_CID } from './validate.js';
export type { RoomPage } from './rooms.js';
