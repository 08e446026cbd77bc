-- Completes leased jobs.
-- KEYS: 1 processing, 2 ids, 3 stats, 4 index, 5 cancel, 6 locks
-- ARGV: 1 the batch's flags (the envelopes' flags bytes or-ed), 2 sum of
--       handler time (us), 3 number k of histogram buckets, then k pairs
--       (bucket, count), then the envelopes.
-- Returns the 0-based indexes of the jobs whose lease was lost.
-- The batch's flags say which stores it touches, so a batch of plain jobs
-- checks and reads none of the others and skips the per-job flags loop.
local flags = tonumber(ARGV[1])
local explicit_ids = flags % 2 == 1
local indexed_ids = math.floor(flags / 8) % 2 == 1
check_types('z' .. (explicit_ids and 's' or '_') .. 'h' .. (indexed_ids and 'h' or ''))
local cancels = redis.pcall('HLEN', KEYS[5])
if type(cancels) == 'table' then check_types('____h') end
local k = tonumber(ARGV[3])
local first = 4 + 2 * k
local n = #ARGV - first + 1
local lost = {}
local mine = {}
-- One ZREM per job: its integer reply says whether the lease was still ours
-- (ZMSCORE would answer with doubles, and printing them costs more).
for i = 1, n do
  local env = ARGV[first + i - 1]
  if redis.call('ZREM', KEYS[1], env) == 1 then
    mine[#mine + 1] = env
  else
    lost[#lost + 1] = i - 1
  end
end
if #mine > 0 then
  if flags % 2 == 1 or flags >= 8 then
    local explicit = {}
    local indexed = {}
    for _, env in ipairs(mine) do
      local bits = string.byte(env, 5)
      if bits % 2 == 1 then explicit[#explicit + 1] = env_id(env) end
      if bits >= 8 then
        if is_indexed(env) then indexed[#indexed + 1] = env_id(env) end
        if holds_lock(env) then release_lock(KEYS[6], env) end
      end
    end
    call_chunked({'SREM', KEYS[2]}, explicit)
    call_chunked({'HDEL', KEYS[4]}, indexed)
  end
  -- A job that completed despite a request to cancel it: the request is
  -- moot.
  if cancels > 0 then
    for _, env in ipairs(mine) do redis.call('HDEL', KEYS[5], env_id(env)) end
  end
  local now = now_ms()
  local minute = math.floor(now / 60000)
  -- For queue health: a topic with jobs pending and no recent completion
  -- is stuck.
  redis.call('HSET', KEYS[3], 'last_completed_ms', now)
  count(KEYS[3], 'completed', #mine)
  count(KEYS[3], 'm' .. minute, #mine)
  count(KEYS[3], 'dur_sum', ARGV[2])
  for b = 1, k do
    count(KEYS[3], 'h' .. ARGV[2 + 2 * b], ARGV[3 + 2 * b])
  end
end
return lost
