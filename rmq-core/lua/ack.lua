-- Completes leased jobs.
-- KEYS: 1 processing, 2 ids, 3 stats
-- ARGV: 1 sum of handler time (us), 2 number k of histogram buckets,
--       then k pairs (bucket, count), then the envelopes.
-- Returns the 0-based indexes of the jobs whose lease was lost.
local k = tonumber(ARGV[2])
local first = 3 + 2 * k
local n = #ARGV - first + 1
-- The id set is written only for jobs with explicit ids.
local ids = '_'
for i = first, #ARGV do
  if is_explicit(ARGV[i]) then
    ids = 's'
    break
  end
end
check_types('_' .. ids .. 'h')
local lost = {}
local mine = {}
-- One ZREM per job: its integer reply says whether the lease was still ours
-- (ZMSCORE would answer with doubles, and printing them costs more). A
-- foreign `processing` key fails the first one, before any write.
for i = 1, n do
  local env = ARGV[first + i - 1]
  local removed = redis.pcall('ZREM', KEYS[1], env)
  if type(removed) == 'table' then check_types('z') end
  if removed == 1 then
    mine[#mine + 1] = env
  else
    lost[#lost + 1] = i - 1
  end
end
if #mine > 0 then
  local explicit = {}
  for _, env in ipairs(mine) do
    if is_explicit(env) then explicit[#explicit + 1] = env_id(env) end
  end
  call_chunked({'SREM', KEYS[2]}, explicit)
  local minute = math.floor(now_ms() / 60000)
  count(KEYS[3], 'completed', #mine)
  count(KEYS[3], 'm' .. minute, #mine)
  count(KEYS[3], 'dur_sum', ARGV[1])
  for b = 1, k do
    count(KEYS[3], 'h' .. ARGV[1 + 2 * b], ARGV[2 + 2 * b])
  end
end
return lost
