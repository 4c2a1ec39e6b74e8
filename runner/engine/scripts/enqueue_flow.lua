-- enqueue_flow: write jobs that use flow control or a dedup mode; a call sent twice is applied once.
-- #flags: none
--
-- KEYS[1] queue (ZSET), KEYS[2] wake list (LIST), KEYS[3] abort (ZSET), KEYS[4] this call's marker (STRING)
-- KEYS[5] job key prefix, KEYS[6] in-progress key prefix (for the pending job a debounce replaces)
-- KEYS[7..17] flow keys (include/flow.lua): spec, meta, delayed, lanes, lane prefix, seq, running, slots prefix,
--   rate prefix, parked prefix, waiting
-- then four keys per job, in ARGV's order: job key, result key, unique marker key, dedup marker key
-- ARGV[1] ms the call's marker lives, ARGV[2] now (unix ms)
-- then ten values per job: id, payload, score (unix ms), expires (ms), unique_for (ms, 0 = none), flow ('1': it
--   waits in the runner-only lanes, '0': in the queue as arq writes it), priority, function, group,
--   dedup ('' none, 't<ms>' throttle, 'd<ms>' debounce)
--
-- An id is taken as enqueue.lua says (job key, result, or unique marker). A throttle refuses every enqueue while
-- its dedup marker lives (the window from the first). A debounce whose marker names a job still waiting gives that
-- job the new payload and moves it to now + window (the window restarts; it runs once, with the latest
-- arguments); otherwise it writes a new job due at now + window.
-- A flow job is parked in the queue at due + PARK (arq sees it deferred, its workers never reach it) with its
-- record in the meta hash, and waits in the delayed set or, due, in its lane.
--
-- Returns one value per job: the id written (or, for a debounce, the job it replaced), '' refused.
-- Errors: none of its own.

-- #include wake_one

local prior = redis.call('GET', KEYS[4])
if prior then return cjson.decode(prior) end
local NOW = tonumber(ARGV[2])
local FK = {queue = KEYS[1], spec = KEYS[7], meta = KEYS[8], delayed = KEYS[9], lanes = KEYS[10], lane = KEYS[11],
  seq = KEYS[12], running = KEYS[13], slots = KEYS[14], rate = KEYS[15], parked = KEYS[16], waiting = KEYS[17]}

-- #include flow

local function unplace(id)
  local meta = redis.call('HGET', FK.meta, id)
  if meta then
    local parts = split(meta)
    redis.call('ZREM', FK.lane .. parts[3] .. US .. (parts[4] or ''), id)
    redis.call('ZREM', FK.delayed, id)
  end
end

local function write(id, payload, score, expires, flow, meta)
  redis.call('PSETEX', KEYS[5] .. id, expires, payload)
  redis.call('ZREM', KEYS[3], id)
  if flow then
    redis.call('HSET', FK.meta, id, meta)
    place(id, score)
  else
    redis.call('ZADD', KEYS[1], score, id)
  end
end

local out = {}
local woken = false
local job = 0
for i = 3, #ARGV, 10 do
  local id, payload, score, expires = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local unique_ms, flow = tonumber(ARGV[i + 4]), ARGV[i + 5] == '1'
  local meta = table.concat({score, ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]}, US)
  local dedup = ARGV[i + 9]
  local base = 17 + job * 4
  job = job + 1
  local mode, window = string.sub(dedup, 1, 1), tonumber(string.sub(dedup, 2))
  local answer = ''
  local pending = mode ~= '' and redis.call('GET', KEYS[base + 4])
  if mode == 'd' then score = math.max(score, NOW + window) end
  if pending and mode == 'd' and redis.call('EXISTS', KEYS[6] .. pending) == 0
      and redis.call('EXISTS', KEYS[5] .. pending) == 1 then
    local at = redis.call('ZSCORE', KEYS[1], pending)
    if at then
      unplace(pending)
      write(pending, payload, score, expires, redis.call('HEXISTS', FK.meta, pending) == 1,
        table.concat({score, ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]}, US))
      redis.call('SET', KEYS[base + 4], pending, 'PX', window)
      answer = pending
    end
  end
  if answer == '' and not (pending and mode == 't')
      and redis.call('EXISTS', KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]) == 0 then
    if unique_ms > 0 then redis.call('SET', KEYS[base + 3], '1', 'PX', unique_ms) end
    if mode ~= '' then redis.call('SET', KEYS[base + 4], id, 'PX', window) end
    write(id, payload, score, expires, flow, meta)
    answer = id
    if not woken and score <= NOW then
      wake_one(KEYS[2])
      woken = true
    end
  end
  out[#out + 1] = answer
end
redis.call('SET', KEYS[4], cjson.encode(out), 'PX', ARGV[1])
return out
