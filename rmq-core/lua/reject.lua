-- Moves a leased job whose payload does not decode to the parse-error store.
-- KEYS: 1 processing, 2 errors, 3 ids, 4 index, 5 locks
-- ARGV: 1 envelope, 2 error, 3 parse-error max entries
-- Returns 1, or 0 when the lease was lost.
local env = ARGV[1]
check_types('zzsh')
if redis.call('ZREM', KEYS[1], env) == 0 then return 0 end
local entry = store_entry(KEYS[2], tonumber(ARGV[3]), now_ms(), ARGV[2], env, KEYS[4])
if not invalid(env) then
  forget_id(KEYS[3], env)
  index_put(KEYS[4], env, 'E', entry)
  release_lock(KEYS[5], env)
end
return 1
