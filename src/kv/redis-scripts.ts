/** The Lua scripts of the Redis KeyValueStore (redis.ts). */

// Compare-and-delete must be one step, or a lock that expired and was re-taken by someone else
// between our GET and DEL would be released from under them.
export const DELETE_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

export const EXTEND_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

// The bucket is one hash {level, ts}; ts is the server's TIME in microseconds so every API
// instance meters against one clock, unless the caller passes its own time (ARGV[4], tests only;
// see RedisKeyValueStoreOptions.now). Expiry is Redis's real time either way, so with a caller's
// clock, which may stand still, the idle TTL is at least ARGV[5] ms: a bucket must not vanish
// while the test's clock says it is still full. Numbers go to HSET as numbers: Redis formats those with full
// precision, while Lua's tostring keeps 14 digits and would round a 16-digit microsecond time.
// Redis truncates Lua numbers to integers on return, so every returned value is rounded explicitly.
// The bucket's body, on KEYS[k] with its arguments from ARGV[a]: rate, burst, cost, caller's clock, min TTL.
const bucketBody = (k: number, a: number) => `
local rate = tonumber(ARGV[${a}])
local burst = tonumber(ARGV[${a + 1}])
local cost = tonumber(ARGV[${a + 2}])
local now = tonumber(ARGV[${a + 3}])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local minTtl = tonumber(ARGV[${a + 4}]) or 0
local state = redis.call('HMGET', KEYS[${k}], 'level', 'ts')
local level = tonumber(state[1]) or 0
local ts = tonumber(state[2]) or now
if now > ts then
  level = math.max(0, level - (now - ts) / 1000000 * rate)
end
local allowed = 0
local retry = 0
if level + cost <= burst then
  level = level + cost
  allowed = 1
else
  retry = math.ceil((level + cost - burst) / rate * 1000)
end
redis.call('HSET', KEYS[${k}], 'level', level, 'ts', now)
redis.call('PEXPIRE', KEYS[${k}], math.max(minTtl, math.ceil(burst / rate * 1000) + 1000))`;

export const LEAKY_BUCKET = `
if redis.replicate_commands then redis.replicate_commands() end
${bucketBody(1, 1)}
return {allowed, math.floor(burst - level), retry, math.ceil(level / rate * 1000)}`;

// The idempotency lock (KEYS[1], ARGV[1] for ARGV[2] ms) and the bucket (KEYS[2], ARGV[3..7]) in
// one call: an intent's two Redis round trips before its handler become one. A held lock answers
// its value and charges nothing; a refused charge releases the lock it just took.
export const CLAIM_AND_METER = `
if redis.replicate_commands then redis.replicate_commands() end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return {0, redis.call('GET', KEYS[1])}
end
${bucketBody(2, 3)}
if allowed == 0 then redis.call('DEL', KEYS[1]) end
return {1, allowed, math.floor(burst - level), retry, math.ceil(level / rate * 1000)}`;
