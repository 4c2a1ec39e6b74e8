-- enqueue: write one or more jobs atomically, refusing ids that are taken; a call sent twice is applied once.
-- #flags: none
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] wake list (LIST)
-- KEYS[3] abort (ZSET)
-- KEYS[4] this call's marker (STRING, a token per call)
-- then three keys per job, in ARGV's order: job key, result key, unique marker key
-- ARGV[1] ms the call's marker lives
-- then five values per job: id, payload, score (unix ms), expires (ms), unique_for (ms, 0 = none)
--
-- An id is taken while its job key or its result exists, or while a `_unique_for` marker holds it: a held id
-- refuses every enqueue of it, with `_unique_for` or without (arq's producers, which know no marker, excepted). A written
-- job drops any abort left over from an earlier job with the same id (arq #485), and one idle worker is woken.
-- The client sends the same call again when its reply is lost (a dropped connection, a reply slower than the
-- socket timeout). The marker holds the first attempt's answer, so the resent call returns it instead of finding
-- its own jobs in the way and calling them refused.
--
-- Redis checks its memory limit once, before the script runs (flags none), so a full Redis refuses the whole
-- call with OOM and never half of it.
--
-- Returns one value per job: 1 written, 0 refused (the id is taken).
-- Errors: none of its own.

-- #include wake_one

local prior = redis.call('GET', KEYS[4])
if prior then
  local replay = {}
  for i = 1, #prior do replay[i] = tonumber(string.sub(prior, i, i)) end
  return replay
end
local out = {}
-- the written ids enter the queue in one ZADD and leave the abort set in one ZREM after the loop (commands per
-- call, not per job); a repeated id in one call still finds the first one's job key, written at once
local queued = {}
local written_ids = {}
local job = 0
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  local base = 4 + job * 3
  job = job + 1
  local written = 0
  if redis.call('EXISTS', KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]) == 0 then
    local unique_ms = tonumber(ARGV[i + 4])
    if unique_ms > 0 then
      redis.call('SET', KEYS[base + 3], '1', 'PX', unique_ms)
    end
    redis.call('PSETEX', KEYS[base + 1], ARGV[i + 3], ARGV[i + 1])
    queued[#queued + 1] = ARGV[i + 2]
    queued[#queued + 1] = id
    written_ids[#written_ids + 1] = id
    written = 1
  end
  out[#out + 1] = written
end
for first = 1, #written_ids, 1000 do
  local last = math.min(first + 999, #written_ids)
  redis.call('ZADD', KEYS[1], unpack(queued, first * 2 - 1, last * 2))
  redis.call('ZREM', KEYS[3], unpack(written_ids, first, last))
end
if #written_ids > 0 then wake_one(KEYS[2]) end
redis.call('SET', KEYS[4], table.concat(out), 'PX', ARGV[1])
return out
