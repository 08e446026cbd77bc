-- Records a failed attempt of a leased job: retry after a delay, or dead.
-- KEYS: 1 processing, 2 delayed, 3 dead, 4 stats, 5 ids, 6 wake, 7 index,
--       8 cancel, 9 locks
-- ARGV: 1 envelope, 2 error, 3 permanent (0/1), 4 retry delay ms,
--       5 dead-letter enabled (0/1), 6 dead max entries, 7 the handler
--       stopped for a cancellation (0/1), 8 keep cancelled jobs (0/1),
--       9 (limits) rate-limited re-delay ms; absent for a plain failure
-- Returns 0 retrying, 1 dead, 2 lease lost, 3 cancelled (never retried),
-- 4 re-delayed (rate limited).
local env = ARGV[1]
check_types('zzzhslhh')
if redis.call('ZREM', KEYS[1], env) == 0 then return 2 end
local now = now_ms()
local request = cancel_request(KEYS[8], env)
if ARGV[9] and not request then
  -- Rate limited upstream: the same attempt runs again later, marked
  -- delayed (its due time is no longer its enqueue time).
  local due = now + tonumber(ARGV[9])
  wake_if_earliest(KEYS[2], KEYS[6], due)
  local again = with_flag(env, 4)
  redis.call('ZADD', KEYS[2], due, again)
  index_put(KEYS[7], again, 'd', again, ARGV[2])
  count(KEYS[4], 'rate_limited', 1)
  return 4
end
count(KEYS[4], 'failed', 1)
if request or ARGV[7] == '1' then
  local keep = request or ARGV[8]
  if ARGV[5] ~= '1' then keep = '0' end
  end_cancelled(KEYS[3], tonumber(ARGV[6]), KEYS[7], KEYS[5], KEYS[8], KEYS[4], now, env, keep)
  release_lock(KEYS[9], env)
  return 3
end
local attempt = string.byte(env, 3)
local max_retries = string.byte(env, 4)
if ARGV[3] == '1' or attempt >= max_retries then
  if ARGV[5] == '1' then
    index_put(KEYS[7], env, 'D', store_entry(KEYS[3], tonumber(ARGV[6]), now, ARGV[2], env, KEYS[7]))
  else
    index_drop(KEYS[7], env)
  end
  forget_id(KEYS[5], env)
  release_lock(KEYS[9], env)
  count(KEYS[4], 'dead', 1)
  count_dead(KEYS[4], now, 1)
  return 1
end
local due = now + tonumber(ARGV[4])
wake_if_earliest(KEYS[2], KEYS[6], due)
local next = with_attempt(env, attempt + 1)
redis.call('ZADD', KEYS[2], due, next)
index_put(KEYS[7], next, 'd', next, ARGV[2])
count(KEYS[4], 'retried', 1)
return 0
