-- Keeps a completed job's result, and tells waiters the job finished.
-- KEYS: 1 the job's result, 2 its done list
-- ARGV: 1 how long the done list lives (ms; 0: waiters are not told),
--       2 (optional) the result to keep, 3 its time to live (ms)
check_types('tl')
if #ARGV >= 3 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
end
local notify = tonumber(ARGV[1])
if notify > 0 then
  -- One element, left in place by waiters (BLMOVE of the list onto
  -- itself), so every waiter blocked now or soon sees it. Waiters read the
  -- result and the status before they block, so it need not outlive them.
  if redis.call('LLEN', KEYS[2]) == 0 then
    redis.call('RPUSH', KEYS[2], '1')
  end
  redis.call('PEXPIRE', KEYS[2], notify)
end
return 1
