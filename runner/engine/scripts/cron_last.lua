-- cron_last: record the latest scheduled occurrence of a cron job that was enqueued (for catch_up).
--
-- KEYS[1] the cron job's last-run key (STRING)
-- ARGV[1] the occurrence (unix ms)
--
-- The key keeps the larger of the stored and the new value: workers race, and an older write must not win.
-- Returns 1.
-- Errors: none of its own.

local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
