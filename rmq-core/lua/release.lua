-- Returns jobs still held to the front of their pending lists, attempt
-- unchanged, in their original order (graceful shutdown); a job asked to
-- cancel ends cancelled instead.
-- KEYS: 1 high, 2 normal, 3 low, 4 processing, 5 wake, 6 index, 7 cancel,
--       8 dead, 9 ids, 10 stats, 11 locks
-- ARGV: 1 dead-letter enabled (0/1), 2 dead max entries, then envelopes
-- Returns how many were still held.
check_types('lllzlhhzsh')
local n = #ARGV
local released = 0
local requeued = 0
for i = n, 3, -1 do
  local env = ARGV[i]
  if redis.call('ZREM', KEYS[4], env) == 1 then
    released = released + 1
    local request = cancel_request(KEYS[7], env)
    if request then
      if ARGV[1] ~= '1' then request = '0' end
      end_cancelled(KEYS[8], tonumber(ARGV[2]), KEYS[6], KEYS[9], KEYS[7], KEYS[10], now_ms(), env, request)
      release_lock(KEYS[11], env)
    else
      redis.call('LPUSH', KEYS[string.byte(env, 2) + 1], env)
      index_put(KEYS[6], env, 'p', env, index_note(KEYS[6], env))
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then wake(KEYS[5]) end
return released
