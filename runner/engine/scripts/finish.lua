-- Apply the outcomes of several jobs in one atomic step.
-- KEYS[1] queue zset, KEYS[2] abort zset, KEYS[3] (optional) this minute's stats hash
-- ARGV[1] job key prefix, ARGV[2] in-progress key prefix, ARGV[3] retry key prefix, ARGV[4] result key prefix,
-- ARGV[5] done channel, ARGV[6] stats hash ttl s, then five values per job: id, kind, result payload or '',
--   keep ms, score (see runner/engine/protocol.py OutcomeKind)
--   kind 'f' (finished): store the result (keep ms: -1 forever, 0 not at all) and remove the job
--   kind 'q' (run again): release the claim and set the score (a retry's defer, or the score it had)
--   a second letter of kind counts the outcome in the stats hash: c complete, f failed, r retried
-- Publishes the finished ids on the done channel so waiting clients wake at once.
local stat_names = {c = 'complete', f = 'failed', r = 'retried'}
local counts = {}
local finished = {}
for i = 7, #ARGV, 5 do
  local id = ARGV[i]
  local kind = string.sub(ARGV[i + 1], 1, 1)
  local stat = stat_names[string.sub(ARGV[i + 1], 2, 2)]
  if stat then counts[stat] = (counts[stat] or 0) + 1 end
  if kind == 'f' then
    local payload = ARGV[i + 2]
    local keep = tonumber(ARGV[i + 3])
    if payload ~= '' then
      if keep > 0 then
        redis.call('SET', ARGV[4] .. id, payload, 'PX', keep)
      elseif keep < 0 then
        redis.call('SET', ARGV[4] .. id, payload)
      end
    end
    redis.call('DEL', ARGV[1] .. id, ARGV[2] .. id, ARGV[3] .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    finished[#finished + 1] = id
  else
    redis.call('DEL', ARGV[2] .. id)
    redis.call('ZADD', KEYS[1], 'XX', ARGV[i + 4], id)
  end
end
if KEYS[3] and next(counts) ~= nil then
  for name, count in pairs(counts) do
    redis.call('HINCRBY', KEYS[3], name, count)
  end
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
if #finished > 0 then
  redis.call('PUBLISH', ARGV[5], table.concat(finished, ' '))
end
return #finished
