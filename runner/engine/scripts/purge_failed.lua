-- purge_failed: delete the stored results of some of a queue's failed jobs, and their index entries.
--
-- KEYS[1] failed index (ZSET), KEYS[2] failed expiry index (ZSET)
-- KEYS[3] result key prefix (a prefix: the ids come in ARGV; every key it builds is `prefix .. id`)
-- ARGV[1] now (unix ms)
-- then the ids, read from the failed index by the caller
--
-- Entries whose result expired are dropped first, so a result written since under a reused id is not deleted.
-- Returns how many results were deleted.
-- Errors: none of its own.

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for i = 1, #expired do
  redis.call('ZREM', KEYS[1], expired[i])
  redis.call('ZREM', KEYS[2], expired[i])
end
local deleted = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZREM', KEYS[2], ARGV[i])
    deleted = deleted + redis.call('DEL', KEYS[3] .. ARGV[i])
  end
end
return deleted
