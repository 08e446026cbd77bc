-- Deletes up to `n` entries from the head of a pending list or the front of
-- the delayed set, dropping their explicit ids and unique locks; called until it returns 0.
-- KEYS: 1 the list or sorted set, 2 ids, 3 locks
-- ARGV: 1 'l' (list) or 'z' (sorted set), 2 n
-- Returns the number of entries deleted.
local n = tonumber(ARGV[2])
local gone
if ARGV[1] == 'l' then
  check_types('ls')
  gone = redis.call('LPOP', KEYS[1], n) or {}
else
  check_types('zs')
  local popped = redis.call('ZPOPMIN', KEYS[1], n)
  gone = {}
  for i = 1, #popped, 2 do gone[#gone + 1] = popped[i] end
end
for _, env in ipairs(gone) do
  if not invalid(env) then
    forget_id(KEYS[2], env)
    release_lock(KEYS[3], env)
  end
end
return #gone
