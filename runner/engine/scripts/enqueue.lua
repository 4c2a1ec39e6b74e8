-- Enqueue one or more jobs atomically, refusing ids that are taken; a call sent twice is applied once.
-- KEYS[1] queue zset, KEYS[2] wake list, KEYS[3] abort zset, KEYS[4] this call's marker (runner:enqueued:<token>)
-- ARGV[1] job key prefix, ARGV[2] result key prefix, ARGV[3] unique key prefix, ARGV[4] ms the marker lives,
-- then five values per job: id, payload, score (ms), expires (ms), unique_for (ms, 0 = none)
-- Returns one 0/1 per job: 1 = written, 0 = refused (the id is queued, has a result, or is held by unique_for).
-- The client sends the same call again when its reply is lost (a dropped connection, a reply slower than the
-- socket timeout). The marker holds the first attempt's answer, so the resent call returns it instead of finding
-- its own jobs in the way and calling them refused.
local prior = redis.call('GET', KEYS[4])
if prior then
  local replay = {}
  for i = 1, #prior do replay[i] = tonumber(string.sub(prior, i, i)) end
  return replay
end
local out = {}
local woken = false
for i = 5, #ARGV, 5 do
  local id = ARGV[i]
  local job_key = ARGV[1] .. id
  local written = 0
  if redis.call('EXISTS', job_key, ARGV[2] .. id) == 0 then
    local unique_ms = tonumber(ARGV[i + 4])
    local free = true
    if unique_ms > 0 then
      free = redis.call('SET', ARGV[3] .. id, '1', 'NX', 'PX', unique_ms) ~= false
    end
    if free then
      redis.call('PSETEX', job_key, ARGV[i + 3], ARGV[i + 1])
      redis.call('ZADD', KEYS[1], ARGV[i + 2], id)
      -- an abort left over from an earlier job with this id must not cancel this one (arq #485)
      redis.call('ZREM', KEYS[3], id)
      written = 1
      if not woken then
        -- one token wakes one idle worker; a worker that claims a full batch passes the token on
        if redis.call('LLEN', KEYS[2]) == 0 then
          redis.call('RPUSH', KEYS[2], '1')
        end
        woken = true
      end
    end
  end
  out[#out + 1] = written
end
redis.call('SET', KEYS[4], table.concat(out), 'PX', ARGV[4])
return out
