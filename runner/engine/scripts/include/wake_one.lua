-- wake_one(wake_key): leave one wake token for an idle worker, unless one is already waiting.
-- One token wakes one idle worker (BLPOP); a worker that claims a full batch passes it on (claim.lua), so
-- a burst of enqueues never wakes a crowd and no stale token sends a worker round for nothing.
local function wake_one(wake_key)
  if redis.call('LLEN', wake_key) == 0 then
    redis.call('RPUSH', wake_key, '1')
  end
end
