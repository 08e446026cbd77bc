-- Records a failed attempt of a leased job: retry after a delay, or dead.
-- KEYS: 1 processing, 2 delayed, 3 dead, 4 stats, 5 ids, 6 wake
-- ARGV: 1 envelope, 2 error, 3 permanent (0/1), 4 retry delay ms,
--       5 dead-letter enabled (0/1), 6 dead max entries,
--       7 (limits) rate-limited re-delay ms; absent for a plain failure
-- Returns 0 retrying, 1 dead, 2 lease lost, 3 re-delayed (rate limited).
local env = ARGV[1]
check_types('zzzhsl')
if redis.call('ZREM', KEYS[1], env) == 0 then return 2 end
local now = now_ms()
if ARGV[7] then
  -- Rate limited upstream: the same attempt runs again later, marked
  -- delayed (its due time is no longer its enqueue time).
  local due = now + tonumber(ARGV[7])
  wake_if_earliest(KEYS[2], KEYS[6], due)
  redis.call('ZADD', KEYS[2], due, with_flag(env, 4))
  count(KEYS[4], 'rate_limited', 1)
  return 3
end
count(KEYS[4], 'failed', 1)
local attempt = string.byte(env, 3)
local max_retries = string.byte(env, 4)
if ARGV[3] == '1' or attempt >= max_retries then
  if ARGV[5] == '1' then store_entry(KEYS[3], tonumber(ARGV[6]), now, ARGV[2], env) end
  forget_id(KEYS[5], env)
  count(KEYS[4], 'dead', 1)
  count_dead(KEYS[4], now, 1)
  return 1
end
local due = now + tonumber(ARGV[4])
wake_if_earliest(KEYS[2], KEYS[6], due)
redis.call('ZADD', KEYS[2], due, with_attempt(env, attempt + 1))
count(KEYS[4], 'retried', 1)
return 0
