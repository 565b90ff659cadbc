/**
 * The querier's record cache (RFC 6762 §5.2, §10): bounded, expiring, with the cache-flush and
 * goodbye rules and the 80/85/90/95 % re-query points. Pure: the caller passes the clock.
 */
import { type DnsRecord, nameKey, RR_ANY, recordKey } from './dns-message.js';

interface Entry {
  key: string;
  record: DnsRecord;
  received: number;
  expires: number;
  /** Next re-query point, or Infinity when all four were used. */
  refreshAt: number;
  stage: number;
}

/** What the cache changed: names whose record sets differ now. */
export type CacheChange = Set<string>;

/** The mDNS record cache of a querier: bounded, expiring, with cache-flush and goodbye rules. */
export class RecordCache {
  readonly #entries = new Map<string, Entry>();
  readonly #byName = new Map<string, Set<string>>();
  /** Records refused or evicted because the cache was full. */
  evicted = 0;

  constructor(readonly maxEntries = 4096) {}

  get size(): number {
    return this.#entries.size;
  }

  #refreshPoint(e: Entry): number {
    if (e.stage >= 4) return Number.POSITIVE_INFINITY;
    // 80, 85, 90, 95 % of the TTL plus up to 2 % at random, so queriers do not ask in unison.
    const fraction = 0.8 + e.stage * 0.05 + Math.random() * 0.02;
    return e.received + e.record.ttl * 1000 * fraction;
  }

  /** Adds one received record; returns the lower-cased name when something changed. */
  add(record: DnsRecord, now: number): string | undefined {
    const key = recordKey({ ...record, ttl: 0, cacheFlush: false });
    const name = nameKey(record.name);
    let changed = false;
    if (record.cacheFlush && record.ttl > 0) {
      // §10.2: other records of this name and type received over a second ago expire in 1 s.
      for (const k of this.#byName.get(name) ?? []) {
        const e = this.#entries.get(k)!;
        if (k !== key && e.record.type === record.type && now - e.received > 1000 && e.expires > now + 1000) {
          e.expires = now + 1000;
          e.refreshAt = Number.POSITIVE_INFINITY;
        }
      }
    }
    const existing = this.#entries.get(key);
    if (record.ttl === 0) {
      // §10.1 goodbye: keep it one more second, then it goes.
      if (existing) {
        existing.expires = Math.min(existing.expires, now + 1000);
        existing.refreshAt = Number.POSITIVE_INFINITY;
      }
      return undefined;
    }
    if (existing) {
      existing.record = record;
      existing.received = now;
      existing.expires = now + record.ttl * 1000;
      existing.stage = 0;
      existing.refreshAt = this.#refreshPoint(existing);
      return undefined;
    }
    if (this.#entries.size >= this.maxEntries && !this.#evictOne()) {
      this.evicted++;
      return undefined;
    }
    const entry: Entry = {
      key,
      record,
      received: now,
      expires: now + record.ttl * 1000,
      refreshAt: 0,
      stage: 0,
    };
    entry.refreshAt = this.#refreshPoint(entry);
    this.#entries.set(key, entry);
    let set = this.#byName.get(name);
    if (!set) this.#byName.set(name, (set = new Set()));
    set.add(key);
    changed = true;
    return changed ? name : undefined;
  }

  /** Drops the entry closest to expiry, so a flood of short-lived records cannot push out the rest. */
  #evictOne(): boolean {
    let victim: Entry | undefined;
    for (const e of this.#entries.values()) if (!victim || e.expires < victim.expires) victim = e;
    if (!victim) return false;
    this.#delete(victim);
    this.evicted++;
    return true;
  }

  #delete(e: Entry): void {
    this.#entries.delete(e.key);
    const name = nameKey(e.record.name);
    const set = this.#byName.get(name);
    set?.delete(e.key);
    if (set?.size === 0) this.#byName.delete(name);
  }

  /** Live records of `name` (and `type`, unless ANY), with their remaining TTL in seconds. */
  get(name: string, type: number, now: number): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const k of this.#byName.get(nameKey(name)) ?? []) {
      const e = this.#entries.get(k)!;
      if (e.expires <= now || (type !== RR_ANY && e.record.type !== type)) continue;
      out.push({ ...e.record, ttl: Math.max(1, Math.floor((e.expires - now) / 1000)) });
    }
    return out;
  }

  /** §7.1: what we already know and may list as known answers (more than half the TTL left). */
  knownAnswers(name: string, type: number, now: number): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const k of this.#byName.get(nameKey(name)) ?? []) {
      const e = this.#entries.get(k)!;
      if (type !== RR_ANY && e.record.type !== type) continue;
      const left = e.expires - now;
      if (left > (e.record.ttl * 1000) / 2) out.push({ ...e.record, ttl: Math.floor(left / 1000) });
    }
    return out;
  }

  /** Removes expired records; returns the names that changed. */
  sweep(now: number): CacheChange {
    const changed: CacheChange = new Set();
    for (const e of this.#entries.values()) {
      if (e.expires <= now) {
        this.#delete(e);
        changed.add(nameKey(e.record.name));
      }
    }
    return changed;
  }

  /** Records that reached a re-query point; each point fires once. */
  due(now: number): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const e of this.#entries.values()) {
      if (e.refreshAt > now) continue;
      out.push(e.record);
      e.stage++;
      e.refreshAt = this.#refreshPoint(e);
    }
    return out;
  }
}
