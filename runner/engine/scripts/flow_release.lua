-- flow_release: after finish.lua, in the same transaction: jobs that held flow slots give them back.
-- #flags: allow-oom
--
-- KEYS[1] queue (ZSET), KEYS[2] wake list (LIST), KEYS[3] in-progress key prefix
-- KEYS[4..14] flow keys (include/flow.lua): spec, meta, delayed, lanes, lane prefix, seq, running, slots prefix,
--   rate prefix, parked prefix, waiting
-- ARGV[1] now (unix ms)
-- then one value per job: its id (jobs whose claim reply said flow = 1: claim.lua)
--
-- A finished job (no longer in the queue) drops its flow record. A job finish.lua put back (a retry, a requeue by a
-- stop) waits again in its lanes: it is parked in the queue (arq and the plain claim never take it) and joins its
-- lane when due. A job still held (its outcome was dropped: another worker took it over) keeps its record. The
-- lanes that waited for a freed slot go again, and one idle worker is woken to take them.
-- It runs at Redis's memory limit (flags allow-oom): it frees what it holds.
--
-- Returns the number of jobs that gave back a slot.
-- Errors: none of its own.

-- #include wake_one

local NOW = tonumber(ARGV[1])
local FK = {queue = KEYS[1], spec = KEYS[4], meta = KEYS[5], delayed = KEYS[6], lanes = KEYS[7], lane = KEYS[8],
  seq = KEYS[9], running = KEYS[10], slots = KEYS[11], rate = KEYS[12], parked = KEYS[13], waiting = KEYS[14]}

-- #include flow

local released = 0
local wake = false
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', KEYS[3] .. id) == 0 then
    if redis.call('ZSCORE', FK.running, id) then released = released + 1 end
    if release(id) then wake = true end
    local score = redis.call('ZSCORE', FK.queue, id)
    if not score then
      redis.call('HDEL', FK.meta, id)
    elseif tonumber(score) < PARK and place(id, tonumber(score)) then
      if tonumber(score) <= NOW then wake = true end
    end
  end
end
if wake then wake_one(KEYS[2]) end
return released
