-- delete_job: delete one job: a waiting one (queued or deferred) with its payload, or a finished one's result.
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] abort (ZSET)
-- KEYS[3] failed index (ZSET), KEYS[4] failed expiry index (ZSET)
-- KEYS[5] the job's job key, KEYS[6] its in-progress key, KEYS[7] its retry key, KEYS[8] its result key
-- ARGV[1] job id
--
-- A job a worker holds is never deleted under it: abort it first.
-- Returns 1 deleted a waiting job, 2 deleted a stored result, 0 nothing was stored, or an error code:
--   -1 refused: a worker runs the job (nothing written)
-- Errors: none of its own.

local id = ARGV[1]
if redis.call('EXISTS', KEYS[6]) == 1 then return -1 end
if redis.call('ZREM', KEYS[1], id) == 1 then
  redis.call('DEL', KEYS[5], KEYS[7])
  redis.call('ZREM', KEYS[2], id)
  return 1
end
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
if redis.call('DEL', KEYS[8]) == 1 then return 2 end
-- a payload left without its queue entry (the entry was removed by hand) goes too
if redis.call('DEL', KEYS[5]) == 1 then return 1 end
return 0
