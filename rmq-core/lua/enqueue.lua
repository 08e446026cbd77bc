-- Enqueues jobs of one topic.
-- KEYS: 1 pending list of the priority, 2 delayed, 3 ids, 4 seq, 5 wake,
--       6 paused, 7 index, 8 (limits) the ring of keys with work, 9 stats,
--       (unique) 10 locks, 11 the lock
-- ARGV: 1 priority byte, 2 delay ms, 3 ttl ms (0 = never), 4 max retries,
--       5 the envelope flags byte (bit 0: explicit ids; bit 1: each payload
--       ends in a trace context trailer; bit 3: indexed by id; bit 4: one
--       unique job), then the
--       payloads, then (explicit) their ids, then (unique) the mode byte,
--       the lock's time to live ms and its key (after `{P:T}:unique:`).
--       With flag bit 5 (topics with a `rate_key`) each payload starts
--       with its key's length and the key, and the jobs go to per-key
--       sub-queues.
-- Returns the last generated id number (0 with explicit ids), or, when an
-- explicit id is already in use, the list of such ids (nothing enqueued).
-- A unique enqueue returns {'n' new | 'd' duplicate | 'r' replaced, id},
-- or the list of ids in use.
local prio = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
-- The keys written after the first write; the id set and the counter are
-- read or written first, and fail before anything changed.
local indexed = math.floor(tonumber(ARGV[5]) / 8) % 2 == 1
local keyed = tonumber(ARGV[5]) % 64 >= 32
if delay > 0 then check_types('_z__l')
elseif keyed then check_types('l___l__lh')
else check_types('l___l') end
if indexed then check_types('______h') end
local ttl = tonumber(ARGV[3])
local max_retries = tonumber(ARGV[4])
local flags = tonumber(ARGV[5])
local explicit = flags % 2 == 1
local unique = math.floor(flags / 16) % 2 == 1
local n = #ARGV - 5
local u_mode, u_px, u_key
if unique then
  u_mode, u_px, u_key = ARGV[#ARGV - 2], ARGV[#ARGV - 1], ARGV[#ARGV]
  n = n - 3
  -- Window locks are released by their time to live only: no flag, no entry.
  if u_mode == 'w' then flags = flags - 16 end
end
if explicit then n = n / 2 end
local now = now_ms()
local expire = 0
if ttl > 0 then expire = now + delay + ttl end

-- A unique job: the lock decides before anything is written.
if unique then
  -- The locks hash is written after the lock: a foreign one must stop the
  -- script before anything is written.
  if u_mode ~= 'w' then check_types('_________h') end
  local held = redis.pcall('GET', KEYS[11])
  if type(held) == 'table' then check_types('__________t') end
  if held then
    if u_mode ~= 'd' then return {'d', held} end
    -- Debounce: the waiting job takes the new payload and waits again.
    local v = redis.call('HGET', KEYS[10], held)
    local old = ''
    if v then
      local _
      _, _, old = lock_entry(v)
    end
    if old ~= '' and redis.call('ZREM', KEYS[2], old) == 1 then
      -- Its id (and whether that id is explicit), this call's payload,
      -- priority, times and trace flag.
      local f = flags - flags % 2 + string.byte(old, 5) % 2
      -- Indexed as the job it replaces was.
      f = f - math.floor(f / 8) % 2 * 8 + math.floor(string.byte(old, 5) / 8) % 2 * 8
      if delay > 0 then f = f + 4 end
      local fresh = struct.pack('>BBBBBI6I6B', 1, prio, 0, max_retries, f, now, expire, #held)
        .. held .. ARGV[6]
      local due = now + delay
      if redis.call('EXISTS', KEYS[6]) == 0 then wake_if_earliest(KEYS[2], KEYS[5], due) end
      redis.call('ZADD', KEYS[2], due, fresh)
      index_put(KEYS[7], fresh, 'd')
      redis.call('HSET', KEYS[10], held, lock_entry_pack('d', u_key, fresh))
      redis.call('PEXPIRE', KEYS[11], u_px)
      return {'r', held}
    end
    -- Due already (promoted to its pending list, not yet leased: a lease
    -- releases the lock): it runs soon, with the payload it has.
    return {'d', held}
  end
end

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

if unique then
  redis.call('SET', KEYS[11], ids[1], 'PX', u_px)
  if u_mode ~= 'w' then
    local queued = ''
    if u_mode == 'd' then queued = envs[1] end
    redis.call('HSET', KEYS[10], ids[1], lock_entry_pack(u_mode, u_key, queued))
  end
end

if delay <= 0 and keyed then
  count(KEYS[9], 'keyed', push_keyed(KEYS[8], envs))
  if indexed then
    for i = 1, n do index_put(KEYS[7], envs[i], 'p') end
  end
  if not paused then wake(KEYS[5]) end
elseif delay <= 0 then
  call_chunked({'RPUSH', KEYS[1]}, envs)
  if indexed then
    for i = 1, n do index_put(KEYS[7], envs[i], 'p') end
  end
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
  if indexed then
    for i = 1, n do index_put(KEYS[7], envs[i], 'd') end
  end
end
if unique then return {'n', ids[1]} end
return last
