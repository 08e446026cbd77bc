-- Re-enqueues dead-lettered jobs as new runs (attempt 0) at the back of
-- their pending lists.
-- KEYS: 1 dead, 2 high, 3 normal, 4 low, 5 ids, 6 wake, 7 index
-- ARGV: dead-letter entries (exact members)
-- Returns {moved, explicit ids that are in use again (left in place)}.
check_types('zlllslh')
local now = now_ms()
local moved = 0
local busy = {}
for _, entry in ipairs(ARGV) do
  if redis.call('ZSCORE', KEYS[1], entry) then
    local env = cmsgpack.unpack(entry)[3]
    if is_explicit(env) and redis.call('SISMEMBER', KEYS[5], env_id(env)) == 1 then
      busy[#busy + 1] = env_id(env)
    else
      redis.call('ZREM', KEYS[1], entry)
      local enqueued = struct.unpack('>I6', env, 6)
      local expire = expire_at(env)
      if expire ~= 0 then expire = now + math.max(0, expire - enqueued) end
      local fresh = string.sub(env, 1, 2) .. string.char(0) .. string.sub(env, 4, 5)
        .. struct.pack('>I6I6', now, expire) .. string.sub(env, 18)
      redis.call('RPUSH', KEYS[string.byte(env, 2) + 2], fresh)
      if is_explicit(env) then redis.call('SADD', KEYS[5], env_id(env)) end
      index_put(KEYS[7], fresh, 'p')
      moved = moved + 1
    end
  end
end
if moved > 0 then wake(KEYS[6]) end
return {moved, busy}
