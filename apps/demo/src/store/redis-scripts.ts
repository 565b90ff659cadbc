import { createHash } from 'node:crypto';

/** A Lua script run with EVALSHA, falling back to EVAL when Redis lost its script cache (restart). */
export interface RedisScript {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): RedisScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Append one message at most once per idempotency key.
 * KEYS: stream, dedup key. ARGV: maxlen, nick, text, key, dedup TTL ms, retention ms.
 * Returns {1, id} for a new entry, {0, id} when the key was seen (the first id).
 * One script so "stored" and "remembered as stored" cannot be separated by a crash. Every append
 * pushes the stream's expiry forward: a room idle for the retention period disappears.
 */
export const APPEND = script(`
local prev = redis.call('GET', KEYS[2])
if prev then return {0, prev} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', ARGV[2], 't', ARGV[3], 'k', ARGV[4])
redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, id}
`);

/**
 * Add (or refresh) one member entry, creating the room if it is not live, within the limits.
 * KEYS: members, live index, creation counter of this window.
 * ARGV: entry, expiry ms, room, now ms, max live rooms, max creations per window, window ms, key TTL ms.
 * Returns 1 when added, -1 when too many rooms are live, -2 when rooms are created too fast.
 * The members key expires with its entries, so a room whose every node died leaves nothing behind.
 * The `#!lua` line makes Redis refuse the whole script while over maxmemory: without it, the
 * first write (a no-op ZREMRANGEBYSCORE) would let every later write through despite OOM.
 */
export const ADD_MEMBER = script(`#!lua
local live = redis.call('ZSCORE', KEYS[2], ARGV[3])
if (not live) or tonumber(live) < tonumber(ARGV[4]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return -1 end
  local n = redis.call('INCR', KEYS[3])
  if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
  if n > tonumber(ARGV[6]) then return -2 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[3])
return 1
`);

/**
 * Claim or refresh a nickname: SET NX PX, or extend the TTL when the caller already owns it.
 * KEYS: nick key. ARGV: owner, TTL ms. Returns 1 when the caller owns it afterwards, else 0.
 */
export const CLAIM = script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

/** Delete a nickname only if the caller owns it. KEYS: nick key. ARGV: owner. */
export const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Remove expired members (score = expiry < now) and return them, atomically, so exactly one node
 * announces each departure. KEYS: members key. ARGV: now ms, max entries per call.
 */
export const SWEEP = script(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #dead > 0 then redis.call('ZREM', KEYS[1], unpack(dead)) end
return dead
`);
