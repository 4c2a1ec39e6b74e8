-- finish: apply the outcomes of several jobs in one atomic step, each only while its worker still holds the claim.
-- #flags: none
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] abort (ZSET)
-- KEYS[3] this minute's stats (HASH)
-- KEYS[4] failed index (ZSET: id -> finish ms), KEYS[5] failed expiry index (ZSET: id -> ms the result expires;
--         a result kept forever is not in it)
-- KEYS[6] job key prefix, KEYS[7] in-progress key prefix, KEYS[8] retry key prefix, KEYS[9] result key prefix,
-- KEYS[10] claim record prefix: every key of a job is `prefix .. id`, and the record of the claim call that took
--   it is `KEYS[10] .. token` (claim.lua: an outcome shows that call's reply arrived, so the record is not needed).
--   Prefixes, not whole keys per job: a batch of outcomes is most of what a worker sends, and five keys per job
--   doubled its size; every layout builds a job's keys as prefix + id (runner/engine/keys.py)
-- ARGV[1] done channel (a pub/sub channel, not a key)
-- ARGV[2] stats hash ttl (s)
-- ARGV[3] '1' to store results, '0' to finish jobs without them (Redis is out of memory: see below)
-- then six values per job: id, kind, result payload or '', keep (ms), score (unix ms), holder token
--   kind (OutcomeKind in runner/engine/protocol.py): the first letter is the action, the second the count
--   'f?' finished: store the result for `keep` ms (-1 forever, 0 not at all) and remove the job and its keys
--   'q?' run again: release the claim and set the score; a requeue by a stop ('q', no count) also gives back
--        the try its claim counted, since the job's own function did not end it
--   second letter: 'c' complete, 'f' failed, 'r' retried are counted in the stats hash; none is not counted
--   holder token: the claim's (claim.lua); '' applies the outcome unchecked
--
-- An outcome is applied while the job's in-progress key holds its token, or holds nothing while the job is still
-- queued (the claim lapsed and nobody took it). Otherwise it is dropped and reported: 'taken' when another worker
-- holds the claim now (this one was frozen past the lease; the other's run decides the job), 'gone' when the job
-- is no longer queued (finished or removed elsewhere).
-- Publishes the finished ids on the done channel so waiting clients wake at once, each as <byte length>:<id>
-- back to back (protocol.finished_ids reads them), so an id may hold any character: a space-separated list
-- woke nobody for an id with a space.
-- Commands per call, not per job: the finished jobs' keys go in one DEL, their ids in one ZREM per sorted set,
-- the claim records in one DEL; per job only the holder check and the result remain.
-- A failed job whose result is kept enters the failed index, and entries whose result has expired leave it (a
-- bounded step per call that has failures), so the dashboard pages and counts failed jobs without a SCAN.
-- The script is refused as a whole while Redis is out of memory (flags none: checked before it runs, so it never
-- stops halfway); the worker then sends it again as FINISH_WITHOUT_RESULTS (flags allow-oom, ARGV[3] '0'), which
-- only removes and moves keys, and so frees memory.
--
-- Returns {number of jobs finished, then per dropped outcome: id, 'taken' or 'gone'}.
-- Errors: none of its own (OOM from Redis itself, see above).

local stat_names = {c = 'complete', f = 'failed', r = 'retried'}
local store_results = ARGV[3] == '1'
local counts = {}
local finished = {}
local dropped = {}
-- what every finished job removes is gathered and removed in one command per kind after the loop (a few
-- commands per call instead of five per job); a later outcome for an id finished earlier in the same call
-- sees it as removed already
local removed_keys = {}
local finished_now = {}
local records_keys = {}
local record_seen = {}
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  local token = ARGV[i + 5]
  if not record_seen[token] then
    record_seen[token] = true
    records_keys[#records_keys + 1] = KEYS[10] .. token
  end
  local holder = false
  if not finished_now[id] then holder = redis.call('GET', KEYS[7] .. id) end
  local mine = token == '' or holder == token
  if not mine and not holder and not finished_now[id] then mine = redis.call('ZSCORE', KEYS[1], id) ~= false end
  if not mine then
    dropped[#dropped + 1] = id
    dropped[#dropped + 1] = holder and 'taken' or 'gone'
  else
    local kind = string.sub(ARGV[i + 1], 1, 1)
    local stat = stat_names[string.sub(ARGV[i + 1], 2, 2)]
    if stat then counts[stat] = (counts[stat] or 0) + 1 end
    if kind == 'f' then
      local payload = ARGV[i + 2]
      local keep = tonumber(ARGV[i + 3])
      if payload ~= '' and store_results then
        if keep > 0 then
          redis.call('SET', KEYS[9] .. id, payload, 'PX', keep)
        elseif keep < 0 then
          redis.call('SET', KEYS[9] .. id, payload)
        end
        if stat == 'failed' and keep ~= 0 then
          redis.call('ZADD', KEYS[4], now_ms, id)
          if keep > 0 then redis.call('ZADD', KEYS[5], now_ms + keep, id) else redis.call('ZREM', KEYS[5], id) end
        end
      end
      if not finished_now[id] then
        finished_now[id] = true
        removed_keys[#removed_keys + 1] = KEYS[6] .. id
        removed_keys[#removed_keys + 1] = KEYS[7] .. id
        removed_keys[#removed_keys + 1] = KEYS[8] .. id
        finished[#finished + 1] = id
      end
    else
      redis.call('DEL', KEYS[7] .. id)
      redis.call('ZADD', KEYS[1], 'XX', ARGV[i + 4], id)
      if not stat then
        local tries = tonumber(redis.call('GET', KEYS[8] .. id))
        if tries and tries > 0 then redis.call('DECR', KEYS[8] .. id) end
      end
    end
  end
end
-- the claim records: an outcome shows its claim call's reply arrived
for first = 1, #records_keys, 1000 do
  redis.call('DEL', unpack(records_keys, first, math.min(first + 999, #records_keys)))
end
for first = 1, #finished, 1000 do
  local last = math.min(first + 999, #finished)
  redis.call('DEL', unpack(removed_keys, first * 3 - 2, last * 3))
  redis.call('ZREM', KEYS[1], unpack(finished, first, last))
  redis.call('ZREM', KEYS[2], unpack(finished, first, last))
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
local reply = {#finished}
for _, value in ipairs(dropped) do reply[#reply + 1] = value end
return reply
