-- Renew the claims of a worker's running jobs.
-- KEYS[1] queue zset
-- ARGV[1] now ms, ARGV[2] lease ms, ARGV[3] in-progress key prefix, then the job ids
-- A claim whose key expired (the worker stalled) is taken back when nobody else holds it.
-- Returns the ids whose claim another worker now holds.
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = ARGV[3] .. id
  if redis.call('PEXPIRE', key, lease) == 1 or redis.call('SET', key, '1', 'NX', 'PX', lease) then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
