-- Returns jobs whose lease expired to the front of their pending lists with
-- the attempt counted, or dead-letters them when no attempt is left; a job
-- asked to cancel ends cancelled instead.
-- KEYS: 1 high, 2 normal, 3 low, 4 processing, 5 dead, 6 stats, 7 ids,
--       8 wake, 9 errors, 10 index, 11 cancel, 12 locks
-- ARGV: 1 max, 2 dead-letter enabled (0/1), 3 dead max entries,
--       4 parse-error max entries
-- Returns {requeued, dead, ms until the earliest remaining deadline or -1,
-- {id, outcome (d dead, c cancelled), ...} of the batch children (explicit
-- ids `batch:...`) that ended here, for their batch's count}.
check_types('lllzzhslzhh')
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local requeued = 0
local dead = 0
local cancelled = 0
local ended = {}
local function batch_child(env, outcome)
  if is_explicit(env) then
    local id = env_id(env)
    if string.sub(id, 1, 6) == 'batch:' then
      ended[#ended + 1] = id
      ended[#ended + 1] = outcome
    end
  end
end
if #expired > 0 then
  call_chunked({'ZREM', KEYS[4]}, expired)
  for _, env in ipairs(expired) do
    local bad = invalid(env)
    if bad then
      store_entry(KEYS[9], tonumber(ARGV[4]), now, bad, env, KEYS[10])
    else
      local request = cancel_request(KEYS[11], env)
      local attempt = string.byte(env, 3) + 1
      if request then
        if ARGV[2] ~= '1' then request = '0' end
        end_cancelled(KEYS[5], tonumber(ARGV[3]), KEYS[10], KEYS[7], KEYS[11], KEYS[6], now, env, request)
        release_lock(KEYS[12], env)
        batch_child(env, 'c')
        cancelled = cancelled + 1
      elseif attempt > string.byte(env, 4) then
        if ARGV[2] == '1' then
          index_put(KEYS[10], env, 'D', store_entry(KEYS[5], tonumber(ARGV[3]), now, 'lease expired', env, KEYS[10]))
        else
          index_drop(KEYS[10], env)
        end
        forget_id(KEYS[7], env)
        release_lock(KEYS[12], env)
        batch_child(env, 'd')
        dead = dead + 1
      else
        local next = with_attempt(env, attempt)
        redis.call('LPUSH', KEYS[string.byte(env, 2) + 1], next)
        index_put(KEYS[10], next, 'p', next, 'lease expired')
        requeued = requeued + 1
      end
    end
  end
  -- An expired lease is a failed attempt, like an error from the handler.
  count(KEYS[6], 'recovered', requeued + dead + cancelled)
  count(KEYS[6], 'failed', requeued + dead)
  if dead > 0 then
    count(KEYS[6], 'dead', dead)
    count_dead(KEYS[6], now, dead)
  end
  if requeued > 0 then wake(KEYS[8]) end
end
local next_deadline = -1
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if #first > 0 then next_deadline = math.max(0, tonumber(first[2]) - now) end
return {requeued, dead, next_deadline, ended}
