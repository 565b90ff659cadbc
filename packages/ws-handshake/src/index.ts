export type {
  BinaryType,
  BrowserSendData,
  CloseEventInit,
  ErrorEventInit,
  Handler as BrowserEventHandler,
} from './browser-websocket.js';
export { BrowserWebSocket, CloseEvent, ErrorEvent } from './browser-websocket.js';
export { connect } from './client.js';
export { CloseCode, isValidWireCloseCode, Opcode, ReadyState, WS_GUID } from './constants.js';
export {
  AbortedError,
  CloseTimeoutError,
  ConnectionClosedError,
  DecompressionError,
  HandshakeError,
  HandshakeTimeoutError,
  HeartbeatTimeoutError,
  Http2UnsupportedError,
  InvalidArgumentError,
  InvalidCloseCodeError,
  InvalidUtf8Error,
  MessageTooBigError,
  ProtocolError,
  ProxyError,
  SlowConsumerError,
  SocketError,
  TooManyRedirectsError,
  WebSocketError,
} from './errors.js';
export type { DeflateParams, ExtensionOffer } from './extension.js';
export { acceptDeflateOffer, formatExtension, parseExtensions } from './extension.js';
export type { UpgradeRequestLike, UpgradeResponseLike, UpgradeValidation } from './handshake.js';
export {
  buildAcceptResponse,
  buildRejectResponse,
  computeAcceptKey,
  createClientKey,
  validateUpgradeRequest,
  verifyUpgradeResponse,
} from './handshake.js';
export type {
  AuthorizeResult,
  BrowserWebSocketOptions,
  ClientOptions,
  ConnectionOptions,
  CreateServerOptions,
  PerMessageDeflateOptions,
  ServerOptions,
  SlowConsumerPolicy,
  WebSocketServerOptions,
} from './options.js';
export type { ConnectResponse } from './proxy-response.js';
export { ConnectResponseParser } from './proxy-response.js';
export type { ProxyOption } from './proxy.js';
export { bypassesProxy, resolveProxy } from './proxy.js';
export type { FrameInflater, ReceiverOptions, ReceiverSink } from './receiver.js';
export { Receiver } from './receiver.js';
export { encodeFrame } from './sender.js';
export type { UpgradeCallback, WebSocketServerEvents } from './server.js';
export { createWebSocketServer, handleUpgrade, WebSocketServer } from './server.js';
export type {
  CloseMessage,
  ErrorMessage,
  HandshakeMessage,
  OpenMessage,
  SlowConsumerMessage,
} from './diagnostics.js';
export type { SendData } from './outbound.js';
export { PreparedMessage } from './prepared.js';
export type { TransportName } from './transport.js';
export type { MessageData, SendOptions, WebSocketEvents } from './websocket.js';
export { WebSocket } from './websocket.js';
export type { H2ConnectValidation, H2RequestHeaders } from './h2-handshake.js';
export {
  buildH2AcceptHeaders,
  isWebSocketConnect,
  validateExtendedConnect,
  verifyH2Response,
} from './h2-handshake.js';
export type { H2UpgradeRequest } from './h2-upgrade.js';
export { handleH2Connect } from './h2-upgrade.js';
export { h2SessionCount } from './h2-client.js';
