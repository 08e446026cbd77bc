-- Completes leased jobs.
-- KEYS: 1 processing, 2 ids, 3 stats
-- ARGV: triples of (envelope, histogram bucket, duration us)
-- Returns the 0-based indexes of the jobs whose lease was lost.
local n = #ARGV / 3
local envs = {}
for i = 1, n do envs[i] = ARGV[3 * i - 2] end
local lost = {}
local mine = {}
local buckets = {}
local sum = 0
for i = 1, n, CHUNK do
  local slice = {}
  for k = i, math.min(i + CHUNK - 1, n) do slice[#slice + 1] = envs[k] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(slice))
  for k = 1, #slice do
    local idx = i + k - 1
    if scores[k] then
      mine[#mine + 1] = slice[k]
      local b = ARGV[3 * idx - 1]
      buckets[b] = (buckets[b] or 0) + 1
      sum = sum + tonumber(ARGV[3 * idx])
    else
      lost[#lost + 1] = idx - 1
    end
  end
end
if #mine > 0 then
  call_chunked({'ZREM', KEYS[1]}, mine)
  local explicit = {}
  for _, env in ipairs(mine) do
    if is_explicit(env) then explicit[#explicit + 1] = env_id(env) end
  end
  call_chunked({'SREM', KEYS[2]}, explicit)
  local minute = math.floor(now_ms() / 60000)
  redis.call('HINCRBY', KEYS[3], 'completed', #mine)
  redis.call('HINCRBY', KEYS[3], 'm' .. minute, #mine)
  redis.call('HINCRBY', KEYS[3], 'dur_sum', sum)
  for b, count in pairs(buckets) do redis.call('HINCRBY', KEYS[3], 'h' .. b, count) end
end
return lost
