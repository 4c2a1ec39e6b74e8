-- heartbeat: renew the claims of a worker's running jobs, the ones it still holds.
-- #flags: allow-oom
--
-- KEYS[1] queue (ZSET)
-- then one key per job, in ARGV's order: its in-progress key
-- ARGV[1] now (unix ms)
-- ARGV[2] lease (ms)
-- ARGV[3] how many of the jobs are still running; the rest have their outcome on its way
-- then per job, running ones first: id, holder token (what its claim wrote in the in-progress key)
--
-- A claim is renewed only while its key holds this worker's token: a key that holds another token belongs to the
-- worker that took the job over while this one was frozen past the lease, and is left alone. A running job's
-- claim whose key expired is taken back when nobody else holds it and the job is still queued. A job whose
-- outcome is on its way is only renewed: once the outcome is written its key is gone for good, and taking it back
-- would hold a finished or requeued job for a whole lease.
-- It runs even when Redis is out of memory (flags allow-oom), so claims do not lapse while the queue drains.
--
-- Returns per lost job: id, 'taken' (another worker holds its claim) or 'gone' (a running job no longer queued:
-- finished or removed elsewhere).
-- Errors: none of its own.

local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local running = tonumber(ARGV[3])
local lost = {}
local n = 0
for i = 4, #ARGV, 2 do
  n = n + 1
  local id, token = ARGV[i], ARGV[i + 1]
  local key = KEYS[n + 1]
  local holder = redis.call('GET', key)
  if holder == token then
    redis.call('PEXPIRE', key, lease)
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
  elseif holder then
    lost[#lost + 1] = id
    lost[#lost + 1] = 'taken'
  elseif n <= running then
    if redis.call('ZSCORE', KEYS[1], id) and redis.call('SET', key, token, 'NX', 'PX', lease) then
      redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    else
      lost[#lost + 1] = id
      lost[#lost + 1] = 'gone'
    end
  end
end
return lost
