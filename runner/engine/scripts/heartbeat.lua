-- heartbeat: renew the claims of a worker's running jobs.
--
-- KEYS[1] queue (ZSET)
-- then one key per job, in ARGV's order: its in-progress key
-- ARGV[1] now (unix ms)
-- ARGV[2] lease (ms)
-- ARGV[3] how many of the jobs are still running; the rest have their outcome on its way
-- then the job ids: first the running ones, then the finishing ones
--
-- A running job's claim whose key expired (the worker stalled) is taken back when nobody else holds it. A job
-- whose outcome is on its way is only renewed: once the outcome is written its key is gone for good, and taking
-- it back would hold a finished or requeued job for a whole lease.
--
-- Returns the ids of running jobs whose claim another worker now holds, or that are no longer queued.
-- Errors: none of its own.

local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local running = tonumber(ARGV[3])
local lost = {}
for n = 1, #ARGV - 3 do
  local id = ARGV[n + 3]
  local key = KEYS[n + 1]
  if redis.call('PEXPIRE', key, lease) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
  elseif n <= running then
    -- a job no longer queued was finished (or purged) elsewhere: nothing to take back
    if redis.call('ZSCORE', KEYS[1], id) and redis.call('SET', key, '1', 'NX', 'PX', lease) then
      redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    else
      lost[#lost + 1] = id
    end
  end
end
return lost
