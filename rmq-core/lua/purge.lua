-- Deletes up to `n` entries from the head of a pending list, the front of
-- the delayed set, or the oldest of the dead-letter or parse-error store,
-- dropping their explicit ids, index records and unique locks; called until
-- it returns 0.
-- KEYS: 1 the list or sorted set, 2 ids, 3 index, 4 locks
-- ARGV: 1 'l' (list of envelopes), 'z' (sorted set of envelopes) or 'e'
--       (sorted set of dead-letter or parse-error entries), 2 n
-- Returns the number of entries deleted.
local n = tonumber(ARGV[2])
local kind = ARGV[1]
local gone
if kind == 'l' then
  check_types('lsh')
  gone = redis.call('LPOP', KEYS[1], n) or {}
else
  check_types('zsh')
  local popped = redis.call('ZPOPMIN', KEYS[1], n)
  gone = {}
  for i = 1, #popped, 2 do gone[#gone + 1] = popped[i] end
end
for _, member in ipairs(gone) do
  if kind == 'e' then
    index_drop_entry(KEYS[3], member)
  elseif not invalid(member) then
    forget_id(KEYS[2], member)
    index_drop(KEYS[3], member)
    release_lock(KEYS[4], member)
  end
end
return #gone
