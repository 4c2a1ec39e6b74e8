-- requeue_failed: put a failed job back in its queue under its own id (`runner jobs retry`).
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] wake list (LIST)
-- KEYS[3] abort (ZSET)
-- KEYS[4] the job's result key
-- KEYS[5] the job's job key
-- KEYS[6] the job's retry key
-- KEYS[7] the queue's failed index (ZSET), KEYS[8] its failed expiry index (ZSET)
-- ARGV[1] the result payload the caller read (the job is requeued only if it is still the stored one)
-- ARGV[2] the new job payload
-- ARGV[3] score (unix ms)
-- ARGV[4] expires (ms)
-- ARGV[5] job id
--
-- The result and try counter go (and the job's failed-index entries), the job is written and queued, a stale
-- abort is dropped, one worker is woken.
-- Returns 1 requeued, or an error code (nothing written):
--   -1 the stored result is not the one the caller read (it changed, expired, or was never there)
--   -2 the id is taken: a job with it is queued or running

-- #include wake_one

if redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[5]) == 1 then return -2 end
redis.call('DEL', KEYS[4], KEYS[6])
redis.call('PSETEX', KEYS[5], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[5])
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('ZREM', KEYS[7], ARGV[5])
redis.call('ZREM', KEYS[8], ARGV[5])
wake_one(KEYS[2])
return 1
