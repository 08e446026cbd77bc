-- Enqueues jobs of one topic.
-- KEYS: 1 pending list of the priority, 2 delayed, 3 ids, 4 seq, 5 wake,
--       6 paused, 7 (limits) the ring of keys with work, 8 stats
-- ARGV: 1 priority byte, 2 delay ms, 3 ttl ms (0 = never), 4 max retries,
--       5 the envelope flags byte (bit 0: explicit ids; bit 1: each payload
--       ends in a trace context trailer), then the payloads, then
--       (explicit) their ids. With flag bit 5 (topics with a `rate_key`)
--       each payload starts with its key's length and the key, and the
--       jobs go to per-key sub-queues.
-- Returns the last generated id number (0 with explicit ids), or, when an
-- explicit id is already in use, the list of such ids (nothing enqueued).
local prio = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
-- The keys written after the first write; the id set and the counter are
-- read or written first, and fail before anything changed.
local keyed = tonumber(ARGV[5]) % 64 >= 32
if delay > 0 then check_types('_z__l')
elseif keyed then check_types('l___l_lh')
else check_types('l___l') end
local ttl = tonumber(ARGV[3])
local max_retries = tonumber(ARGV[4])
local flags = tonumber(ARGV[5])
local explicit = flags % 2 == 1
local n = #ARGV - 5
if explicit then n = n / 2 end
local now = now_ms()
local expire = 0
if ttl > 0 then expire = now + delay + ttl end

local ids = {}
local last = 0
if explicit then
  for i = 1, n do ids[i] = ARGV[5 + n + i] end
  local dups = {}
  local seen = {}
  for i = 1, n, CHUNK do
    local slice = {}
    for k = i, math.min(i + CHUNK - 1, n) do slice[#slice + 1] = ids[k] end
    local found = redis.pcall('SMISMEMBER', KEYS[3], unpack(slice))
    if found.err then check_types('__s') end
    for k = 1, #slice do
      if found[k] == 1 or seen[slice[k]] then dups[#dups + 1] = slice[k] end
      seen[slice[k]] = true
    end
  end
  if #dups > 0 then return dups end
  call_chunked({'SADD', KEYS[3]}, ids)
else
  last = redis.pcall('INCRBY', KEYS[4], n)
  if type(last) == 'table' then
    check_types('___t')
    error({err = 'WRONGTYPE rmq expects an integer counter at key ' .. KEYS[4]
      .. '; nothing was changed. Another program wrote this key: delete it, or give rmq its own queue_prefix'})
  end
  for i = 1, n do ids[i] = string.format('%d', last - n + i) end
end

-- A paused topic's workers fetch nothing: waking them would only spin them.
local paused = redis.call('EXISTS', KEYS[6]) == 1

-- Bit 2: enqueued with a delay (its due time is not enqueued_at).
if delay > 0 then flags = flags + 4 end
local envs = {}
for i = 1, n do
  local id = ids[i]
  envs[i] = struct.pack('>BBBBBI6I6B', 1, prio, 0, max_retries, flags, now, expire, #id) .. id .. ARGV[5 + i]
end

if delay <= 0 and keyed then
  count(KEYS[8], 'keyed', push_keyed(KEYS[7], envs))
  if not paused then wake(KEYS[5]) end
elseif delay <= 0 then
  call_chunked({'RPUSH', KEYS[1]}, envs)
  if not paused then wake(KEYS[5]) end
else
  local due = now + delay
  if not paused then wake_if_earliest(KEYS[2], KEYS[5], due) end
  local due_s = string.format('%d', due)
  local pairs_ = {}
  for i = 1, n do
    pairs_[2 * i - 1] = due_s
    pairs_[2 * i] = envs[i]
  end
  call_chunked({'ZADD', KEYS[2]}, pairs_)
end
return last
