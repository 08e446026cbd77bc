-- Extends the leases of jobs still held.
-- KEYS: 1 processing
-- ARGV: 1 lease ms, then envelopes
-- Returns the 0-based indexes of the jobs whose lease was lost.
check_types('z')
local deadline = now_ms() + tonumber(ARGV[1])
local n = #ARGV - 1
local lost = {}
local leases = {}
for i = 1, n, CHUNK do
  local slice = {}
  for k = i, math.min(i + CHUNK - 1, n) do slice[#slice + 1] = ARGV[k + 1] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(slice))
  for k = 1, #slice do
    if scores[k] then
      leases[#leases + 1] = deadline
      leases[#leases + 1] = slice[k]
    else
      lost[#lost + 1] = i + k - 2
    end
  end
end
call_chunked({'ZADD', KEYS[1], 'XX'}, leases)
return lost
