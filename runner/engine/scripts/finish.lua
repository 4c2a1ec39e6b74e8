-- Apply the outcomes of several jobs in one atomic step.
-- KEYS[1] queue zset, KEYS[2] abort zset
-- ARGV[1] job key prefix, ARGV[2] in-progress key prefix, ARGV[3] retry key prefix, ARGV[4] result key prefix,
-- ARGV[5] done channel, then four values per job: id, kind, result payload or '', number
--   kind 'f' (finished): store the result (number = ms to keep it, -1 forever, 0 not at all) and remove the job
--   kind 'q' (run again): release the claim and set the score to number (a retry's defer, or the score it had)
-- Publishes the finished ids on the done channel so waiting clients wake at once.
local finished = {}
for i = 6, #ARGV, 4 do
  local id = ARGV[i]
  local kind = ARGV[i + 1]
  local n = tonumber(ARGV[i + 3])
  if kind == 'f' then
    local payload = ARGV[i + 2]
    if payload ~= '' then
      if n > 0 then
        redis.call('SET', ARGV[4] .. id, payload, 'PX', n)
      elseif n < 0 then
        redis.call('SET', ARGV[4] .. id, payload)
      end
    end
    redis.call('DEL', ARGV[1] .. id, ARGV[2] .. id, ARGV[3] .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    finished[#finished + 1] = id
  else
    redis.call('DEL', ARGV[2] .. id)
    redis.call('ZADD', KEYS[1], 'XX', n, id)
  end
end
if #finished > 0 then
  redis.call('PUBLISH', ARGV[5], table.concat(finished, ' '))
end
return #finished
