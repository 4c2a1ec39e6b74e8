-- flow: shared steps of the runner-only flow-control layout (runner/engine/flow.py draws it).
-- The script that includes it first sets FK, the flow keys it got through KEYS, and NOW (unix ms):
--   FK.spec HASH (function or '*' -> limits), FK.meta HASH (id -> 'due<US>priority<US>function<US>group'),
--   FK.delayed ZSET (id -> due ms), FK.lanes ZSET (lane -> order), FK.lane prefix of a lane's ZSET (id -> order),
--   FK.seq STRING (order counter), FK.running ZSET (id -> ms its claim lapses at the latest),
--   FK.slots prefix of a scope's SET of running ids, FK.rate prefix of a scope's rate STRING (GCRA time),
--   FK.parked prefix of a scope's SET of lanes waiting for its slots, FK.waiting ZSET (lane -> ms its rate allows).
-- A lane is `function<US>group` ('' without a group); a scope is '*' (the queue), 'f<US>function' or
-- 'f<US>function<US>group'. <US> is the byte 31. A waiting job sits in the queue ZSET at due + PARK, so arq and
-- the plain claim never reach it; a running one is in it at now + lease like any claimed job.
local US = string.char(31)
local PARK = 10000000000000
local PRIO = 1099511627776 -- 2^40: order = -priority * PRIO + seq

local function split(text)
  local parts = {}
  local from = 1
  while true do
    local at = string.find(text, US, from, true)
    if not at then parts[#parts + 1] = string.sub(text, from); return parts end
    parts[#parts + 1] = string.sub(text, from, at - 1)
    from = at + 1
  end
end

-- limits: 'concurrency rate_n rate_ms group_concurrency group_rate_n group_rate_ms' (0 = none)
local spec_cache = {}
local function spec_of(name)
  local found = spec_cache[name]
  if found == nil then
    found = {0, 0, 0, 0, 0, 0}
    local raw = redis.call('HGET', FK.spec, name)
    if raw then
      local i = 1
      for value in string.gmatch(raw, '%S+') do found[i] = tonumber(value); i = i + 1 end
    end
    spec_cache[name] = found
  end
  return found
end

local function head_order(lane)
  local head = redis.call('ZRANGE', FK.lane .. lane, 0, 0, 'WITHSCORES')
  if #head == 0 then return nil end
  return tonumber(head[2])
end

local function lane_scopes(lane)
  local parts = split(lane)
  if parts[2] == '' then return {'f' .. US .. parts[1]} end
  return {'f' .. US .. parts[1], 'f' .. lane}
end

-- a lane enters the order unless it waits for a slot or for its rate
local function offer_lane(lane, order)
  if redis.call('ZSCORE', FK.waiting, lane) then return end
  for _, scope in ipairs(lane_scopes(lane)) do
    if redis.call('SISMEMBER', FK.parked .. scope, lane) == 1 then return end
  end
  redis.call('ZADD', FK.lanes, 'LT', order, lane)
end

-- a due job joins its lane: behind the jobs of its priority, ahead of lower ones
local function make_ready(id, meta)
  local parts = split(meta)
  local lane = parts[3] .. US .. (parts[4] or '')
  local order = -tonumber(parts[2]) * PRIO + redis.call('INCR', FK.seq)
  redis.call('ZADD', FK.lane .. lane, order, id)
  redis.call('ZREM', FK.delayed, id)
  offer_lane(lane, order)
end

-- a waiting job (new, retried, requeued or taken back) is parked in the queue and placed by its due time
local function place(id, due)
  local meta = redis.call('HGET', FK.meta, id)
  if not meta then return false end
  local parts = split(meta)
  parts[1] = tostring(due)
  meta = table.concat(parts, US)
  redis.call('HSET', FK.meta, id, meta)
  redis.call('ZADD', FK.queue, PARK + due, id)
  if due <= NOW then make_ready(id, meta) else redis.call('ZADD', FK.delayed, due, id) end
  return true
end

-- the lanes a scope's full slots held back may go again
local function unpark(scope)
  local lanes = redis.call('SMEMBERS', FK.parked .. scope)
  if #lanes == 0 then return false end
  redis.call('DEL', FK.parked .. scope)
  for _, lane in ipairs(lanes) do
    local order = head_order(lane)
    if order then offer_lane(lane, order) end
  end
  return true
end

-- a job gives back its slots (finished, requeued, or its claim lapsed); true when a lane may go again
local function release(id)
  redis.call('ZREM', FK.running, id)
  local freed = redis.call('SREM', FK.slots .. '*', id) == 1
  local meta = redis.call('HGET', FK.meta, id)
  if meta then
    local parts = split(meta)
    for _, scope in ipairs(lane_scopes(parts[3] .. US .. (parts[4] or ''))) do
      if redis.call('SREM', FK.slots .. scope, id) == 1 and unpark(scope) then freed = true end
    end
  end
  return freed
end

-- GCRA: `n` per `period` ms, evenly spaced, bursts of a tenth of n (at least 1)
-- returns how many of `want` may start now and, when none, the ms one may
local function rate_room(scope, n, period, want)
  local step = period / n
  local burst = math.max(1, math.floor(n / 10))
  local tat = tonumber(redis.call('GET', FK.rate .. scope)) or NOW
  if tat < NOW then tat = NOW end
  local room = math.floor(((burst - 1) * step - (tat - NOW)) / step) + 1
  if room <= 0 then return 0, math.ceil(tat - (burst - 1) * step) end
  return math.min(room, want), 0
end

local function rate_take(scope, n, period, count)
  if count <= 0 then return end
  local step = period / n
  local tat = tonumber(redis.call('GET', FK.rate .. scope)) or NOW
  if tat < NOW then tat = NOW end
  tat = tat + count * step
  redis.call('SET', FK.rate .. scope, tostring(tat), 'PX', math.ceil(tat - NOW) + 1000)
end
