-- claim: claim up to `limit` due jobs for one worker, in one round trip; a call sent twice is applied once.
-- #flags: allow-oom
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] abort (ZSET)
-- KEYS[3] wake list (LIST)
-- KEYS[4] job key prefix, KEYS[5] in-progress key prefix, KEYS[6] retry key prefix
--         (prefixes, because the script finds the ids itself; every key it builds is `prefix .. id`)
-- KEYS[7] this call's claim record (HASH: id -> score, the jobs it claimed; runner:claimed:<token>)
-- ARGV[1] now (unix ms)
-- ARGV[2] limit: most jobs to claim
-- ARGV[3] lease (ms)
-- ARGV[4] retry key ttl (s)
-- ARGV[5] '1' to report each job's abort time, '0' not to
-- ARGV[6] holder token: unique to this worker and this call (arq only checks that the in-progress key exists)
-- KEYS[8..18], ARGV[7]: flow control (runner-only, include/flow.lua): KEYS spec, meta, delayed, lanes, lane prefix,
--   seq, running, slots prefix, rate prefix, parked prefix, waiting; ARGV[7] '1' runs its steps (only while the
--   spec or meta hash exists: a queue without limits or flow jobs skips them), '0' (or none) never
--
-- A claimed job's in-progress key holds the token and lives `lease` ms (the worker's heartbeat renews it), and its
-- score is moved to now + lease, so it leaves the due range while it runs and comes back by itself if the worker
-- dies. Its try counter is incremented: the try is counted before the worker decodes the payload, so a payload
-- that kills every worker that decodes it still runs out of tries. A job whose in-progress key exists is held by
-- another worker and skipped.
-- The worker sends the same call again (same token) when its reply was lost. The claim record lets the second
-- run hand over what the first one claimed, without counting another try and without leaving those jobs to wait
-- a whole lease: the jobs the token still holds are renewed and returned, with the try they already have.
-- It runs even when Redis is out of memory (flags allow-oom): a worker that claims and finishes jobs frees memory.
--
-- Flow control, when on: due flow jobs join their lanes and lapsed flow claims give back their slots first; then
-- lanes above priority 0 are claimed, then plain jobs (priority 0), then the other lanes, all within the limits.
--
-- Returns {next due ms or -1, then per job: id, original score, payload or '' (expired), try, abort ms or 0,
--   flow: 1 when the job holds flow slots (its outcome gives them back: flow_release.lua), else 0};
--   next due is only looked up when fewer than `limit` jobs were claimed (runner/engine/protocol.py reads it).
-- Errors: none of its own.

-- #include wake_one

local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local token = ARGV[6]
local out = {-1}
-- the flow steps cost a handful of commands per call: they run only while the queue has limits (the spec hash a
-- worker publishes) or flow jobs (each one has its entry in the meta hash from enqueue until its slots are given
-- back), so a queue that uses none claims as cheaply as before flow control existed
local FLOW_ON = ARGV[7] == '1' and redis.call('EXISTS', KEYS[8], KEYS[9]) > 0
local FK = {queue = KEYS[1], spec = KEYS[8], meta = KEYS[9], delayed = KEYS[10], lanes = KEYS[11], lane = KEYS[12],
  seq = KEYS[13], running = KEYS[14], slots = KEYS[15], rate = KEYS[16], parked = KEYS[17], waiting = KEYS[18]}
local NOW = now

local function hand_over(id, score, try, flow)
  -- the worker compares the abort's time with the job's enqueue time: an older abort is stale (arq #485)
  local aborted = 0
  if ARGV[5] == '1' then aborted = redis.call('ZSCORE', KEYS[2], id) or 0 end
  out[#out + 1] = id
  out[#out + 1] = score
  out[#out + 1] = redis.call('GET', KEYS[4] .. id) or ''
  out[#out + 1] = try
  out[#out + 1] = aborted
  out[#out + 1] = flow or 0
end

-- the flow steps' functions are made only by a call that runs them: making them costs a few µs per call
local function flow_steps()
-- #include flow
-- #include flow_claim
  return {prepare = flow_prepare, claim = flow_claim, queue_room = queue_room, plain_taken = flow_plain_taken,
    ready = flow_ready, note_due = note_due, state = FLOW}
end
local F = FLOW_ON and flow_steps() or nil

local before = redis.call('HGETALL', KEYS[7])
if #before > 0 then
  -- a resend: the first run's jobs, those the token still holds (a lease that lapsed meanwhile let go of the rest)
  for i = 1, #before, 2 do
    local id = before[i]
    if redis.call('GET', KEYS[5] .. id) == token then
      redis.call('PEXPIRE', KEYS[5] .. id, lease)
      redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
      local flow = FLOW_ON and redis.call('ZSCORE', FK.running, id) and 1 or 0
      hand_over(id, before[i + 1], tonumber(redis.call('GET', KEYS[6] .. id)) or 1, flow)
    end
  end
  return out
end

local claimed = 0
local skipped = 0
local record = {}
local asked = limit
if FLOW_ON then
  F.prepare(lease)
  claimed = F.claim(limit, '(0', lease, token)
  limit = claimed + F.queue_room(limit - claimed)
end
local first_plain = #out + 1
while claimed < limit do
  local want = limit - claimed + 8
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', skipped, want)
  if #due == 0 then break end
  -- this round's claimed ids leave the due range in one ZADD before the next round reads it
  local moved = {}
  for i = 1, #due, 2 do
    local id = due[i]
    if redis.call('SET', KEYS[5] .. id, token, 'NX', 'PX', lease) then
      moved[#moved + 1] = now + lease
      moved[#moved + 1] = id
      local try = redis.call('INCR', KEYS[6] .. id)
      redis.call('EXPIRE', KEYS[6] .. id, ARGV[4])
      record[#record + 1] = id
      record[#record + 1] = due[i + 1]
      hand_over(id, due[i + 1], try)
      claimed = claimed + 1
      if claimed >= limit then break end
    else
      -- held by another worker (an arq worker keeps the score while it runs a job)
      skipped = skipped + 1
    end
  end
  for first = 1, #moved, 2000 do
    redis.call('ZADD', KEYS[1], 'XX', unpack(moved, first, math.min(first + 1999, #moved)))
  end
  if #due < want * 2 or skipped > 1000 then break end
end
if FLOW_ON then
  F.plain_taken(first_plain, #out, lease)
  claimed = claimed + F.claim(asked - claimed, '+inf', lease, token)
end
limit = asked
if claimed > 0 then
  -- one record per call (not a write per job): the ids and scores a resend of this call hands over
  for first = 1, #record, 2000 do
    redis.call('HSET', KEYS[7], unpack(record, first, math.min(first + 1999, #record)))
  end
  redis.call('PEXPIRE', KEYS[7], lease)
end
-- leave a wake token exactly when due jobs remain, so an idle peer takes them
if claimed >= limit and (#redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', skipped, 1) > 0
    or (FLOW_ON and F.ready())) then
  wake_one(KEYS[3])
else
  redis.call('DEL', KEYS[3])
end
if claimed < limit then
  local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #nxt > 0 then out[1] = nxt[2] end
  if FLOW_ON then
    local delayed = redis.call('ZRANGE', FK.delayed, 0, 0, 'WITHSCORES')
    if #delayed > 0 then F.note_due(tonumber(delayed[2])) end
    if F.state.next_due and (out[1] == -1 or F.state.next_due < tonumber(out[1])) then out[1] = F.state.next_due end
  end
end
return out
