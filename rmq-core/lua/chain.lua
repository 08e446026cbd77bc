-- A chain's record (`{P:chain:<id>}`), the only key: create it, or record
-- that a step completed.
-- KEYS: 1 the chain's record
-- ARGV: 'create', time to live (ms), then field, value pairs:
--         creates the record unless it exists; returns its last completed
--         step (-1 for a new record)
--       'done', step, time to live (ms):
--         keeps the highest completed step; returns the last completed
--         step before this call, or -2 when the record is gone
check_types('h')
local function last_done()
  return tonumber(redis.call('HGET', KEYS[1], 'done') or '-1') or -1
end
if ARGV[1] == 'create' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return last_done() end
  local fields = {'HSET', KEYS[1], 'done', '-1'}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call(unpack(fields))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local done = last_done()
local step = tonumber(ARGV[2])
if step > done then redis.call('HSET', KEYS[1], 'done', step) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return done
