export type { Codec, CodecFactory, DecodedOf, EncodableOf } from './codec.js';
export { BufferList } from './buffer-list.js';
export { Frame } from './frame.js';
export type { FrameEvent } from './frame-events.js';
export { FrameStream } from './frame-stream.js';
export { LengthPrefixedCodec, type LengthPrefixedEncodable, lengthPrefixed } from './length-prefixed.js';
export { LineCodec, type LineBufferOptions, lines } from './line.js';
export { JsonLinesCodec, json } from './json.js';
export { RawCodec, raw } from './raw.js';
export { Connection, type ConnectionEvents, type ConnectionState } from './connection.js';
export { createServer, Server, type ConnectionHandler, type ServerEvents } from './server.js';
export { connect } from './client.js';
export {
  ReconnectingClient,
  type ReconnectEvents,
  type ReconnectState,
  type RetryInfo,
} from './reconnect.js';
export type {
  CloseOptions,
  ConnectionOptions,
  ConnectOptions,
  JsonCodecOptions,
  LengthPrefixedOptions,
  LineCodecOptions,
  ListenOptions,
  ReconnectOptions,
  ServerOptions,
} from './options.js';
export {
  AbortError,
  ConnectionClosedError,
  ConnectTimeoutError,
  FrameAbortedError,
  FrameTooLargeError,
  IdleTimeoutError,
  InvalidFrameError,
  InvalidOptionError,
  IteratorActiveError,
  LineTooLongError,
  NotConnectedError,
  PendingBytesExceededError,
  QueueFullError,
  ReconnectFailedError,
  SendStreamActiveError,
  ServerStateError,
  TcpError,
  TooManyConnectionsError,
  TruncatedFrameError,
} from './errors.js';
