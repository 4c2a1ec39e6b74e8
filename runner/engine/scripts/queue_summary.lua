-- queue_summary: count one queue's jobs by state, read-only, in one step (the dashboard's overview and pages).
--
-- KEYS[1] queue (ZSET)
-- KEYS[2] failed index (ZSET: id -> finish ms), KEYS[3] failed expiry index (ZSET: id -> ms the result expires)
-- KEYS[4] in-progress key prefix (a prefix, because the script finds the ids itself)
-- ARGV[1] now (unix ms)
-- ARGV[2] window (ms): the longest lease of the queue's workers
-- ARGV[3] front: how many of the first due jobs to check
-- ARGV[4] near: how many jobs due within the window to check
-- then the ids the workers' presence records list as running
--
-- A held job (one with an in-progress key) is found without scanning the keyspace: an arq worker keeps the score
-- of a job it runs and takes jobs from the front of the due range; a runner worker moves the score to now + lease
-- and keeps renewing it; and runner workers list what they run in their presence records.
--
-- Returns {due, future, held due, held future, oldest free due score or -1, failed, exact (1/0), held ids...};
--   exact is 0 when a checked range held more jobs than were looked at, so the held count is a lower bound.
-- Errors: none of its own.

local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local front_n = tonumber(ARGV[3])
local near_n = tonumber(ARGV[4])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local future = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local exact = 1
local held = {}
local held_due, held_future = 0, 0
local function check(id, score)
  if held[id] ~= nil then return end
  held[id] = redis.call('EXISTS', KEYS[4] .. id) == 1
  if held[id] then
    if tonumber(score) <= now then held_due = held_due + 1 else held_future = held_future + 1 end
  end
end
local oldest = -1
local front = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, front_n)
for i = 1, #front, 2 do
  check(front[i], front[i + 1])
  if oldest == -1 and not held[front[i]] then oldest = front[i + 1] end
end
if #front == 2 * front_n and due > front_n then
  exact = 0
  if oldest == -1 then
    local after = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', front_n, 1)
    if #after > 0 then oldest = after[2] end
  end
end
local near = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, now + window, 'WITHSCORES', 'LIMIT', 0, near_n)
for i = 1, #near, 2 do check(near[i], near[i + 1]) end
if #near == 2 * near_n then exact = 0 end
for i = 5, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score then check(ARGV[i], score) end
end
local failed = redis.call('ZCARD', KEYS[2]) - redis.call('ZCOUNT', KEYS[3], '-inf', now)
local out = {due, future, held_due, held_future, oldest, failed, exact}
for id, is_held in pairs(held) do
  if is_held then out[#out + 1] = id end
end
return out
