export { ClientResponse, httpAgent, httpsAgent, request } from './client.js';
export { Context } from './context.js';
export {
  BodyAbortedError,
  BodyConsumedError,
  BodyTooLargeError,
  ClientError,
  ConnectionError,
  HttpError,
  type Http2Limit,
  Http2LimitError,
  DuplicateHostError,
  InvalidJsonError,
  InvalidOptionError,
  InvalidPathError,
  RequestAbortedError,
  RequestTimeoutError,
  ResponseConsumedError,
  ResponseJsonError,
  ResponseShapeError,
  ResponseTooLargeError,
  RouteError,
  ServerStateError,
  TooManyRedirectsError,
  TooManyTunnelsError,
  UnsupportedMediaTypeError,
} from './errors.js';
export type {
  CloseOptions,
  ConnectOptions,
  Http2Options,
  RequestOptions,
  RouteOptions,
  ServerOptions,
  StaticOptions,
  TunnelTarget,
} from './options.js';
export { type ErrorBody, Reply, reply } from './respond.js';
export { ANY_METHOD, Router, type RouteMatch } from './router.js';
export {
  createServer,
  type Handler,
  type ListenOptions,
  type ParamNames,
  type PathParams,
  Server,
  type ServerEvents,
  type UpgradeHandler,
  type H2ConnectHandler,
} from './server.js';
export { contentTypeFor, etagMatches, parseRange, type RangeResult, serveStatic } from './static.js';
export { normalizePath } from './path.js';
export { compileSerializer, type ResponseSchema } from './serializer.js';
