import { InvalidArgumentError } from './errors.js';
import type { SendData } from './outbound.js';
import { PreparedMessage } from './prepared.js';
import type { WebSocket } from './websocket.js';

/**
 * Topic subscriptions of one server: topic → subscribers, and on each connection the set of
 * its topics (so a closing connection leaves all of them without scanning every topic).
 * A publish frames the message once (compressed once per compressor setting for connections
 * without context takeover) and queues it on each subscriber; every subscriber keeps its own
 * `maxBufferedAmount` accounting, so a slow one is closed by the slow-consumer rule and never
 * holds back the others.
 */
export class TopicRegistry {
  private readonly topics = new Map<string, Set<WebSocket>>();

  subscribe(ws: WebSocket, topic: string): boolean {
    if (typeof topic !== 'string') throw new InvalidArgumentError('A topic is a string');
    let members = this.topics.get(topic);
    if (members === undefined) {
      members = new Set();
      this.topics.set(topic, members);
    } else if (members.has(ws)) {
      return false;
    }
    members.add(ws);
    ws._topics ??= new Set();
    ws._topics.add(topic);
    return true;
  }

  unsubscribe(ws: WebSocket, topic: string): boolean {
    if (ws._topics === null || !ws._topics.delete(topic)) return false;
    this.remove(ws, topic);
    return true;
  }

  /** A closed connection leaves every topic. */
  leaveAll(ws: WebSocket): void {
    const topics = ws._topics;
    if (topics === null) return;
    ws._topics = null;
    for (const topic of topics) this.remove(ws, topic);
  }

  private remove(ws: WebSocket, topic: string): void {
    const members = this.topics.get(topic);
    if (members === undefined) return;
    members.delete(ws);
    if (members.size === 0) this.topics.delete(topic);
  }

  /** Subscribers of `topic`. */
  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** Topics with at least one subscriber. */
  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /** Queue `data` on every subscriber of `topic` but `except`; returns how many. */
  publish(topic: string, data: SendData, binary: boolean | undefined, except: WebSocket | null): number {
    const members = this.topics.get(topic);
    if (members === undefined || (members.size === 1 && except !== null && members.has(except))) return 0;
    const message = new PreparedMessage(data, binary);
    let n = 0;
    for (const ws of members) {
      if (ws !== except && ws._broadcast(message)) n++;
    }
    return n;
  }
}
