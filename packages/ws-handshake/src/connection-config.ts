import {
  type ConnectionOptions,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_ITERATOR_HWM,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_SLOW_CONSUMER_TIMEOUT,
  type SlowConsumerPolicy,
} from './options.js';
import type { OutboundConfig } from './outbound.js';
import type { TopicRegistry } from './topics.js';
import type { TransportName } from './transport.js';
import type { ConnectionSetup } from './websocket.js';

/** A connection's resolved settings, shared by every connection made with the same options. */
export interface ConnectionConfig extends OutboundConfig {
  slowConsumer: SlowConsumerPolicy;
  slowConsumerTimeout: number;
  closeTimeout: number;
  heartbeatInterval: number;
  iteratorHighWaterMark: number;
  transport: TransportName;
  /** The server's topic registry; null outside a `WebSocketServer`. */
  topics: TopicRegistry | null;
}

// A server hands the same options object to every connection: resolve it once.
const configs = new WeakMap<ConnectionOptions, ConnectionConfig[]>();
export function connectionConfig(options: ConnectionOptions, setup: ConnectionSetup): ConnectionConfig {
  let list = configs.get(options);
  if (list === undefined) {
    list = [];
    configs.set(options, list);
  }
  const transport = setup.transport ?? 'http/1.1';
  const topics = setup.topics ?? null;
  for (const c of list) {
    if (
      c.deflateThreshold === setup.deflateThreshold &&
      c.heartbeatInterval === setup.heartbeatInterval &&
      c.transport === transport &&
      c.topics === topics
    )
      return c;
  }
  const config: ConnectionConfig = {
    deflateThreshold: setup.deflateThreshold,
    maxBufferedAmount: options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED,
    slowConsumer: options.slowConsumer ?? 'close',
    slowConsumerTimeout: options.slowConsumerTimeout ?? DEFAULT_SLOW_CONSUMER_TIMEOUT,
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    heartbeatInterval: setup.heartbeatInterval,
    iteratorHighWaterMark: options.iteratorHighWaterMark ?? DEFAULT_ITERATOR_HWM,
    transport,
    topics,
  };
  if (list.length < 4) list.push(config);
  return config;
}
