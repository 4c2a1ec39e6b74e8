-- Claim up to `limit` due jobs for one worker in one round trip.
-- KEYS[1] queue zset, KEYS[2] abort zset, KEYS[3] wake list
-- ARGV[1] now ms, ARGV[2] limit, ARGV[3] lease ms, ARGV[4] job key prefix, ARGV[5] in-progress key prefix,
-- ARGV[6] retry key prefix, ARGV[7] retry key ttl s, ARGV[8] check aborts (1/0)
-- A claimed job gets an in-progress key living `lease` ms (the worker's heartbeat renews it) and its score is
-- moved to now + lease, so it leaves the due range while it runs and comes back by itself if the worker dies.
-- Returns {next_due_ms or -1, then per job: id, original score, payload or '', try, abort ms or 0}.
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local out = {-1}
local claimed = 0
local skipped = 0
while claimed < limit do
  local want = limit - claimed + 8
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', skipped, want)
  if #due == 0 then break end
  for i = 1, #due, 2 do
    local id = due[i]
    if redis.call('SET', ARGV[5] .. id, '1', 'NX', 'PX', lease) then
      redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
      local payload = redis.call('GET', ARGV[4] .. id) or ''
      local try = redis.call('INCR', ARGV[6] .. id)
      redis.call('EXPIRE', ARGV[6] .. id, ARGV[7])
      -- the worker compares the abort's time with the job's enqueue time: an older abort is stale (arq #485)
      local aborted = 0
      if ARGV[8] == '1' then aborted = redis.call('ZSCORE', KEYS[2], id) or 0 end
      out[#out + 1] = id
      out[#out + 1] = due[i + 1]
      out[#out + 1] = payload
      out[#out + 1] = try
      out[#out + 1] = aborted
      claimed = claimed + 1
      if claimed >= limit then break end
    else
      -- held by another worker (an arq worker keeps the score while it runs a job)
      skipped = skipped + 1
    end
  end
  if #due < want * 2 or skipped > 1000 then break end
end
-- leave a wake token exactly when due jobs remain, so an idle peer takes them and no stale token
-- sends an idle worker round for nothing
if claimed >= limit and #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', skipped, 1) > 0 then
  if redis.call('LLEN', KEYS[3]) == 0 then redis.call('RPUSH', KEYS[3], '1') end
else
  redis.call('DEL', KEYS[3])
end
if claimed < limit then
  local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #nxt > 0 then out[1] = nxt[2] end
end
return out
