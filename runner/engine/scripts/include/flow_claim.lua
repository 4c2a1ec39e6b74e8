-- flow_claim: claim.lua's flow-control steps (needs include/flow.lua, FK, NOW, and claim.lua's hand_over).
-- FLOW.queue_cap, FLOW.queue_rate_n, FLOW.queue_rate_ms: the queue-wide limits (0 = none), from FK.spec['*'].

local FLOW = {next_due = nil, woke = false}

local function note_due(at)
  if at and (FLOW.next_due == nil or at < FLOW.next_due) then FLOW.next_due = at end
end

-- jobs whose time has come join their lanes, lanes whose rate allows go again, and claims that lapsed (their
-- worker died) give back their slots and wait again: the plain claim below never sees them
local function flow_prepare(lease)
  local due = redis.call('ZRANGEBYSCORE', FK.delayed, '-inf', NOW, 'LIMIT', 0, 500)
  for _, id in ipairs(due) do
    local meta = redis.call('HGET', FK.meta, id)
    if meta then make_ready(id, meta) else redis.call('ZREM', FK.delayed, id) end
  end
  local ready = redis.call('ZRANGEBYSCORE', FK.waiting, '-inf', NOW, 'LIMIT', 0, 500)
  for _, lane in ipairs(ready) do
    redis.call('ZREM', FK.waiting, lane)
    local order = head_order(lane)
    if order then offer_lane(lane, order) end
  end
  -- 2 s of slack for clocks: the plain claim must not find a lapsed flow job due before this step does
  local lapsing = redis.call('ZRANGEBYSCORE', FK.running, '-inf', NOW + 2000, 'LIMIT', 0, 200)
  for _, id in ipairs(lapsing) do
    local left = redis.call('PTTL', KEYS[5] .. id)
    if left > 0 then
      redis.call('ZADD', FK.running, NOW + left, id)
    else
      release(id)
      local score = redis.call('ZSCORE', FK.queue, id)
      if score and tonumber(score) < PARK then place(id, NOW) end
    end
  end
  local q = spec_of('*')
  FLOW.queue_cap, FLOW.queue_rate_n, FLOW.queue_rate_ms = q[1], q[2], q[3]
end

-- how many jobs the queue-wide limits let start now
local function queue_room(want)
  if FLOW.queue_cap > 0 then
    want = math.min(want, math.max(FLOW.queue_cap - redis.call('SCARD', FK.slots .. '*'), 0))
  end
  if FLOW.queue_rate_n > 0 and want > 0 then
    local room, at = rate_room('*', FLOW.queue_rate_n, FLOW.queue_rate_ms, want)
    note_due(at > 0 and at or nil)
    want = room
  end
  return want
end

-- a claimed job holds its slots until its outcome is written or its claim lapses
local function hold(id, scopes, lease)
  if FLOW.queue_cap > 0 then redis.call('SADD', FK.slots .. '*', id) end
  for _, scope in ipairs(scopes) do redis.call('SADD', FK.slots .. scope, id) end
  redis.call('ZADD', FK.running, NOW + lease, id)
end

-- how many of `want` jobs a lane may start now; 0 parks it (waiting for a slot or for its rate)
local function lane_room(lane, want)
  local parts = split(lane)
  local spec = spec_of(parts[1])
  local grouped = parts[2] ~= ''
  local scopes = lane_scopes(lane)
  local caps = {spec[1], spec[4]}
  local rates = {{spec[2], spec[3]}, {spec[5], spec[6]}}
  if grouped then want = 1 end -- one job per turn: groups take turns
  for i, scope in ipairs(scopes) do
    if caps[i] > 0 then
      local free = caps[i] - redis.call('SCARD', FK.slots .. scope)
      if free <= 0 then
        redis.call('ZREM', FK.lanes, lane)
        redis.call('SADD', FK.parked .. scope, lane)
        return 0, scopes
      end
      want = math.min(want, free)
    end
  end
  for i, scope in ipairs(scopes) do
    local rate = rates[i]
    if rate[1] > 0 then
      local room, at = rate_room(scope, rate[1], rate[2], want)
      if room == 0 then
        redis.call('ZREM', FK.lanes, lane)
        redis.call('ZADD', FK.waiting, at, lane)
        note_due(at)
        return 0, scopes
      end
      want = room
    end
  end
  return want, scopes, rates
end

-- claim up to `budget` jobs from the lanes whose order is below `order_limit`, best lane first
local function flow_claim(budget, order_limit, lease, token)
  local taken = 0
  local rounds = 0
  while taken < budget and rounds < budget * 2 + 50 do
    rounds = rounds + 1
    local best = redis.call('ZRANGEBYSCORE', FK.lanes, '-inf', order_limit, 'LIMIT', 0, 1)
    if #best == 0 then break end
    local lane = best[1]
    local open = queue_room(budget - taken)
    if open == 0 then break end
    local room, scopes, rates = lane_room(lane, open)
    if room > 0 then
      local got = 0
      local ids = redis.call('ZRANGE', FK.lane .. lane, 0, room - 1)
      for _, id in ipairs(ids) do
        redis.call('ZREM', FK.lane .. lane, id)
        local meta = redis.call('HGET', FK.meta, id)
        local score = redis.call('ZSCORE', FK.queue, id)
        -- a job deleted meanwhile (runner jobs delete, purge) leaves its lane without a run
        if meta and score and redis.call('SET', KEYS[5] .. id, token, 'NX', 'PX', lease) then
          redis.call('ZADD', FK.queue, NOW + lease, id)
          local try = redis.call('INCR', KEYS[6] .. id)
          redis.call('EXPIRE', KEYS[6] .. id, ARGV[4])
          local due = split(meta)[1]
          redis.call('HSET', KEYS[7], id, due)
          hold(id, scopes, lease)
          hand_over(id, due, try, 1)
          got = got + 1
        elseif not score then
          redis.call('HDEL', FK.meta, id)
        end
      end
      for i, scope in ipairs(scopes) do
        if rates[i][1] > 0 then rate_take(scope, rates[i][1], rates[i][2], got) end
      end
      if FLOW.queue_rate_n > 0 then rate_take('*', FLOW.queue_rate_n, FLOW.queue_rate_ms, got) end
      taken = taken + got
      local order = head_order(lane)
      if not order then
        redis.call('ZREM', FK.lanes, lane)
      elseif redis.call('ZSCORE', FK.lanes, lane) then
        -- a group goes behind every lane waiting now, at its priority: groups take turns
        if split(lane)[2] ~= '' then
          order = math.max(order, math.floor(order / PRIO) * PRIO + redis.call('INCR', FK.seq))
        end
        redis.call('ZADD', FK.lanes, order, lane)
      end
    end
  end
  return taken
end

-- after the plain claim: its jobs count against the queue-wide limits too
local function flow_plain_taken(first, last, lease)
  local count = 0
  for at = first, last, 6 do
    count = count + 1
    if FLOW.queue_cap > 0 then
      hold(out[at], {}, lease)
      out[at + 5] = 1
    end
  end
  if FLOW.queue_rate_n > 0 then rate_take('*', FLOW.queue_rate_n, FLOW.queue_rate_ms, count) end
end

-- whether flow jobs wait that a peer could take now
local function flow_ready()
  return redis.call('ZCARD', FK.lanes) > 0 and queue_room(1) > 0
end
