-- Extends the leases of jobs still held, and tells which of them were asked
-- to cancel.
-- KEYS: 1 processing, 2 cancel
-- ARGV: 1 lease ms, then envelopes
-- Returns {0-based indexes of the jobs whose lease was lost, 0-based indexes
-- of the held jobs asked to cancel}.
check_types('zh')
local deadline = now_ms() + tonumber(ARGV[1])
local n = #ARGV - 1
local lost = {}
local leases = {}
local asked = redis.call('HLEN', KEYS[2]) > 0
local cancel = {}
for i = 1, n, CHUNK do
  local slice = {}
  for k = i, math.min(i + CHUNK - 1, n) do slice[#slice + 1] = ARGV[k + 1] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(slice))
  for k = 1, #slice do
    if scores[k] then
      leases[#leases + 1] = deadline
      leases[#leases + 1] = slice[k]
      if asked and redis.call('HEXISTS', KEYS[2], env_id(slice[k])) == 1 then
        cancel[#cancel + 1] = i + k - 2
      end
    else
      lost[#lost + 1] = i + k - 2
    end
  end
end
call_chunked({'ZADD', KEYS[1], 'XX'}, leases)
return {lost, cancel}
