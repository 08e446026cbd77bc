-- Deletes entries, or runs delayed jobs now, by their exact bytes; an entry
-- no longer there is skipped (it ran, or moved, meanwhile).
-- KEYS: 1 high, 2 normal, 3 low, 4 delayed, 5 dead, 6 errors, 7 ids,
--       8 wake, 9 paused, 10 index, 11 locks
-- ARGV: 1 'delete' or 'run', then pairs: the KEYS index of the entry's
--       state, its bytes ('run': delayed entries only).
-- Returns the number of entries deleted or moved.
local run = ARGV[1] == 'run'
check_types('lllzzzsl_h')
local function forget(env)
  if not invalid(env) then
    forget_id(KEYS[7], env)
    index_drop(KEYS[10], env)
    release_lock(KEYS[11], env)
  end
end
local done = 0
local moved = false
for i = 2, #ARGV, 2 do
  local k = tonumber(ARGV[i])
  local member = ARGV[i + 1]
  if k <= 3 then
    if redis.call('LREM', KEYS[k], 1, member) == 1 then
      done = done + 1
      forget(member)
    end
  elseif run then
    if not invalid(member) and redis.call('ZREM', KEYS[k], member) == 1 then
      redis.call('RPUSH', KEYS[string.byte(member, 2) + 1], member)
      index_put(KEYS[10], member, 'p', member, index_note(KEYS[10], member))
      done = done + 1
      moved = true
    end
  elseif redis.call('ZREM', KEYS[k], member) == 1 then
    done = done + 1
    if k == 4 then forget(member) else index_drop_entry(KEYS[10], member) end
  end
end
if moved and redis.call('EXISTS', KEYS[9]) == 0 then wake(KEYS[8]) end
return done
