export {
  type Command,
  type CommandName,
  COMMANDS,
  helpEntries,
  helpLines,
  type ParsedLine,
  type ParseError,
  type ParseErrorCode,
  parseLine,
  unhandledCommand,
  unknownCommand,
} from './commands.js';
export { ERROR_SENTENCES, humanError } from './errors.js';
export {
  type ClientFrame,
  DEFAULT_ROOM,
  type EventFrame,
  normalizeRoom,
  PROTOCOL_VERSION,
  type ServerFrame,
  type WireMessage,
} from './frames.js';
export { ackLine, errorLine, type LineView, renderFrame, tokenLine, welcomeLines } from './render.js';
export { eventFrame, wireMessage } from './event-frame.js';
