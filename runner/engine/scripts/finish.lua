-- finish: apply the outcomes of several jobs in one atomic step.
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] abort (ZSET)
-- KEYS[3] this minute's stats (HASH)
-- KEYS[4] failed index (ZSET: id -> finish ms), KEYS[5] failed expiry index (ZSET: id -> ms the result expires;
--         a result kept forever is not in it)
-- then four keys per job, in ARGV's order: job key, in-progress key, retry key, result key
-- ARGV[1] done channel (a pub/sub channel, not a key)
-- ARGV[2] stats hash ttl (s)
-- then five values per job: id, kind, result payload or '', keep (ms), score (unix ms)
--   kind (OutcomeKind in runner/engine/protocol.py): the first letter is the action, the second the count
--   'f?' finished: store the result for `keep` ms (-1 forever, 0 not at all) and remove the job and its keys
--   'q?' run again: release the claim and set the score
--   second letter: 'c' complete, 'f' failed, 'r' retried are counted in the stats hash; none is not counted
--
-- Publishes the finished ids on the done channel so waiting clients wake at once, each as <byte length>:<id>
-- back to back (protocol.finished_ids reads them), so an id may hold any character: a space-separated list
-- woke nobody for an id with a space.
-- A failed job whose result is kept enters the failed index, and entries whose result has expired leave it (a
-- bounded step per call that has failures), so the dashboard pages and counts failed jobs without a SCAN.
-- Returns the number of jobs finished.
-- Errors: none of its own.

local stat_names = {c = 'complete', f = 'failed', r = 'retried'}
local counts = {}
local finished = {}
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local job = 0
for i = 3, #ARGV, 5 do
  local id = ARGV[i]
  local base = 5 + job * 4
  job = job + 1
  local kind = string.sub(ARGV[i + 1], 1, 1)
  local stat = stat_names[string.sub(ARGV[i + 1], 2, 2)]
  if stat then counts[stat] = (counts[stat] or 0) + 1 end
  if kind == 'f' then
    local payload = ARGV[i + 2]
    local keep = tonumber(ARGV[i + 3])
    if payload ~= '' then
      if keep > 0 then
        redis.call('SET', KEYS[base + 4], payload, 'PX', keep)
      elseif keep < 0 then
        redis.call('SET', KEYS[base + 4], payload)
      end
      if stat == 'failed' and keep ~= 0 then
        redis.call('ZADD', KEYS[4], now_ms, id)
        if keep > 0 then redis.call('ZADD', KEYS[5], now_ms + keep, id) else redis.call('ZREM', KEYS[5], id) end
      end
    end
    redis.call('DEL', KEYS[base + 1], KEYS[base + 2], KEYS[base + 3])
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    finished[#finished + 1] = id
  else
    redis.call('DEL', KEYS[base + 2])
    redis.call('ZADD', KEYS[1], 'XX', ARGV[i + 4], id)
  end
end
if next(counts) ~= nil then
  for name, count in pairs(counts) do
    redis.call('HINCRBY', KEYS[3], name, count)
  end
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
if counts['failed'] then
  -- expiries come no faster than failures did, so a bounded step per call keeps up
  local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now_ms, 'LIMIT', 0, 200)
  if #expired > 0 then
    redis.call('ZREM', KEYS[4], unpack(expired))
    redis.call('ZREM', KEYS[5], unpack(expired))
  end
end
if #finished > 0 then
  local message = {}
  for _, id in ipairs(finished) do message[#message + 1] = #id .. ':' .. id end
  redis.call('PUBLISH', ARGV[1], table.concat(message))
end
return #finished
