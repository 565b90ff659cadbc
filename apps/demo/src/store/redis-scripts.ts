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
 * KEYS: stream, dedup key, rooms set. ARGV: maxlen, nick, text, key, dedup TTL ms, room.
 * Returns {1, id} for a new entry, {0, id} when the key was seen (the first id).
 * One script so "stored" and "remembered as stored" cannot be separated by a crash.
 */
export const APPEND = script(`
local prev = redis.call('GET', KEYS[2])
if prev then return {0, prev} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', ARGV[2], 't', ARGV[3], 'k', ARGV[4])
redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[6])
return {1, id}
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
