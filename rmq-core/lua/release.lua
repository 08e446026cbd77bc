-- Returns jobs still held to the front of their pending lists, attempt
-- unchanged, in their original order (graceful shutdown).
-- KEYS: 1 high, 2 normal, 3 low, 4 processing, 5 wake
-- ARGV: envelopes
-- Returns how many were still held.
check_types('lllzl')
local n = #ARGV
local released = 0
for i = n, 1, -1 do
  local env = ARGV[i]
  if redis.call('ZREM', KEYS[4], env) == 1 then
    redis.call('LPUSH', KEYS[string.byte(env, 2) + 1], env)
    released = released + 1
  end
end
if released > 0 then wake(KEYS[5]) end
return released
