-- Renew the claims of a worker's running jobs.
-- KEYS[1] queue zset
-- ARGV[1] now ms, ARGV[2] lease ms, ARGV[3] in-progress key prefix, ARGV[4] how many of the ids are still running,
-- then the ids: first the running ones, then those whose outcome is being written (renewed, never re-taken)
-- A running job's claim whose key expired (the worker stalled) is taken back when nobody else holds it. A job
-- whose outcome is on its way is only renewed: once the outcome is written its key is gone for good, and taking
-- it back would hold a finished or requeued job for a whole lease.
-- Returns the ids of running jobs whose claim another worker now holds, or that are no longer queued.
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local running = tonumber(ARGV[4])
local lost = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = ARGV[3] .. id
  if redis.call('PEXPIRE', key, lease) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
  elseif i - 4 <= running then
    -- a job no longer queued was finished (or purged) elsewhere: nothing to take back
    if redis.call('ZSCORE', KEYS[1], id) and redis.call('SET', key, '1', 'NX', 'PX', lease) then
      redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    else
      lost[#lost + 1] = id
    end
  end
end
return lost
