-- purge: delete waiting jobs of one queue (`runner jobs purge`); a job a worker holds is left to finish.
--
-- KEYS[1] queue (ZSET)
-- then three keys per job, in ARGV's order: job key, in-progress key, retry key
-- ARGV: the job ids
--
-- Returns {deleted, running}: jobs removed, and jobs left alone because a worker holds them.
-- Errors: none of its own.

local deleted, running = 0, 0
for n = 1, #ARGV do
  local id = ARGV[n]
  local base = 1 + (n - 1) * 3
  if redis.call('EXISTS', KEYS[base + 2]) == 1 then
    running = running + 1
  elseif redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', KEYS[base + 1], KEYS[base + 3])
    deleted = deleted + 1
  end
end
return {deleted, running}
