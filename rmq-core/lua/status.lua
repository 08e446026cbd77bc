-- Reads where an indexed job is, in one consistent view.
-- KEYS: 1 index, 2 high, 3 normal, 4 low, 5 delayed, 6 processing, 7 dead,
--       8 errors, 9 cancel, 10 the ring of keys with work (topics with a
--       `rate_key`: a pending job waits in `<10>:q:<key>`)
-- ARGV: 1 job id, 2 most list entries compared to find a pending job's
--       position
-- Returns {} for a job the index does not hold, else {state, member, note,
-- score (due, lease deadline or time of death; for a pending job its
-- 0-based position, or -1 past the bound), asked to cancel (0/1)}.
check_types('hlllzzzzh')
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return {} end
local r = cmsgpack.unpack(record)
local state, member, note = r[1], r[2], r[3]
local score
if state == 'p' then
  local key = fair_key(member)
  if key ~= '' then
    score = redis.call('LPOS', KEYS[10] .. ':q:' .. key, member, 'MAXLEN', tonumber(ARGV[2]))
  end
  score = score or redis.call('LPOS', KEYS[2 + string.byte(member, 2)], member, 'MAXLEN', tonumber(ARGV[2])) or -1
else
  local store = {d = 5, x = 6, D = 7, c = 7, E = 8}
  score = redis.call('ZSCORE', KEYS[store[state]], member)
  -- A record whose entry is gone (removed by a tool that does not keep
  -- the index) reads as unknown.
  if not score then return {} end
end
local asked = 0
if state == 'x' and redis.call('HEXISTS', KEYS[9], ARGV[1]) == 1 then asked = 1 end
return {state, member, note, tostring(score), tostring(asked)}
