-- Promotes due delayed jobs, then leases up to `max` jobs, strict priority,
-- FIFO within a priority.
-- KEYS: 1 high, 2 normal, 3 low, 4 delayed, 5 processing, 6 dead, 7 errors,
--       8 ids, 9 stats, 10 wake, 11 paused, 12 index, 13 locks,
--       14 (limits) rate, 15 the ring of keys with work (its sub-queues
--       `<15>:q:<key>` and per-key rate states `<15>:r:<key>` share its
--       hash tag)
-- ARGV: 1 max, 2 lease ms, 3 promote batch, 4 dead max entries,
--       5 parse-error max entries, 6 deadline (server ms, 0 = none),
--       7 the fetching worker's id (kept in the index records of the jobs
--       it leases), 8 (limits) rate interval us (0 = no rate), 9 rate
--       burst, 10 concurrency (0 = none), 11 keyed (1: the topic's jobs
--       wait in fair per-key sub-queues; the rate is per key)
-- Returns {leased envelopes, ms until the next delayed job is due or -1,
--          server time ms, entries dead-lettered as expired,
--          ms to wait before fetching this topic again (0: no limit held
--          the batch back), the limit that did (0 none, 1 rate,
--          2 concurrency)}; a paused topic leases and promotes nothing.
local max = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local promote = tonumber(ARGV[3])
local deadline_ms = tonumber(ARGV[6])
local keyed = ARGV[11] == '1'
local now = now_ms()

-- Reached Redis after its caller stopped waiting for the reply (a stall):
-- leasing now would hand jobs to nobody.
if deadline_ms > 0 and now > deadline_ms then return {{}, 0, now, 0, 0, 0} end
if redis.call('EXISTS', KEYS[11]) == 1 then return {{}, -1, now, 0, 0, 0} end
-- The keys every lease writes; the others are checked when they are needed.
check_types('lll_z____l')

-- Promotion of due delayed jobs (cheap check first; it also finds a foreign
-- `delayed` key before any write).
local first = redis.pcall('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if first.err then check_types('___z') end
if #first > 0 and tonumber(first[2]) <= now then
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, promote)
  local lists = {{}, {}, {}}
  local fair = {}
  local broken = {}
  local marked = {}
  for _, env in ipairs(due) do
    local bad, bits = invalid(env)
    if bad then
      broken[#broken + 1] = {bad, env}
    else
      if bits >= 8 and is_indexed(env) then marked[#marked + 1] = env end
      if keyed then
        fair[#fair + 1] = env
      else
        local l = lists[string.byte(env, 2) + 1]
        l[#l + 1] = env
      end
    end
  end
  -- The stores only some promotions write, checked before the first write.
  if #broken > 0 then check_types('______z____h') elseif #marked > 0 then check_types('___________h') end
  for _, entry in ipairs(broken) do
    store_entry(KEYS[7], tonumber(ARGV[5]), now, entry[1], entry[2], KEYS[12])
  end
  for _, env in ipairs(marked) do
    index_put(KEYS[12], env, 'p', env, index_note(KEYS[12], env))
  end
  for p = 1, 3 do call_chunked({'RPUSH', KEYS[p]}, lists[p]) end
  if #fair > 0 then
    check_types('________h_____l')
    count(KEYS[9], 'keyed', push_keyed(KEYS[15], fair))
  end
  call_chunked({'ZREM', KEYS[4]}, due)
  first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
end
local next_due = -1
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - now) end

-- Limits (ARGV 7-9 are 0 for a plain topic: nothing below runs for it).
local interval = tonumber(ARGV[8])
local concurrency = tonumber(ARGV[10])
local held_back = 0
local limit_wait = 0
local rate_from = 0
if concurrency > 0 then
  -- Live leases only: a crashed worker's slot frees at its lease expiry.
  local free = concurrency - redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')
  if free < max then
    max = math.max(free, 0)
    held_back = 2
    -- Slots free at an ack (not signalled) or at the earliest lease expiry.
    local soonest = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    limit_wait = CONCURRENCY_POLL_MS
    if #soonest > 0 then limit_wait = math.max(1, math.min(limit_wait, tonumber(soonest[2]) - now)) end
  end
end
if interval > 0 and max > 0 and not keyed then
  local n, wait
  n, wait, rate_from = gcra_allow(tonumber(redis.call('GET', KEYS[14]) or 0) or 0,
    now_us(), interval, tonumber(ARGV[9]), max)
  if n < max then
    max = n
    held_back = 1
    limit_wait = math.max(limit_wait, wait)
  end
end

local out = {}
local leases = {}
local flagged = {}
-- Formatted once: a Lua number passed to redis.call is printed per use.
local deadline = string.format('%d', now + lease)
-- Entries that do not run: {reason, envelope}, and whether any expired.
local dropped = {}
local expired = 0
-- Per list, the replies of its LPOPs (to put them back).
local popped = {{}, {}, {}}
-- Entries examined per call are capped, so a backlog of expired or broken
-- entries is cleared over several calls instead of stalling Redis in one.
local budget = max + promote
if keyed then
  check_types('_____zzsh___h_l')
  -- Jobs given back to the pending lists (recovery, shutdown, dead-letter
  -- retries) join their keys' sub-queues first, a bounded number per call.
  local back = {}
  for p = 1, 3 do
    local got = redis.call('LPOP', KEYS[p], promote)
    if got then
      for _, env in ipairs(got) do
        local bad = invalid(env)
        if bad then
          store_entry(KEYS[7], tonumber(ARGV[5]), now, bad, env, KEYS[12])
        else
          back[#back + 1] = env
        end
      end
    end
  end
  if #back > 0 then count(KEYS[9], 'keyed', push_keyed(KEYS[15], back)) end
  -- One job per key per turn of the ring: a key's backlog never sits in
  -- front of another key's job.
  local taken = 0
  local skipped = 0
  local key_wait = 0
  local us = 0
  if interval > 0 then us = now_us() end
  while #out < max and budget > 0 do
    local key = redis.call('LMOVE', KEYS[15], KEYS[15], 'LEFT', 'RIGHT')
    if not key then break end
    budget = budget - 1
    local allowed, wait, from = 1, 0, 0
    if interval > 0 then
      allowed, wait, from = gcra_allow(
        tonumber(redis.call('GET', KEYS[15] .. ':r:' .. key) or 0) or 0,
        us, interval, tonumber(ARGV[9]), 1)
    end
    if allowed == 0 then
      skipped = skipped + 1
      if key_wait == 0 or wait < key_wait then key_wait = wait end
      if skipped >= redis.call('LLEN', KEYS[15]) then break end
    else
      skipped = 0
      local sub = KEYS[15] .. ':q:' .. key
      local env = redis.call('LPOP', sub)
      if redis.call('LLEN', sub) == 0 then
        -- Just moved to the tail: out of the ring until it has work again.
        redis.call('RPOP', KEYS[15])
      end
      if env then
        taken = taken + 1
        local bad = invalid(env)
        local exp = 0
        if not bad then exp = expire_at(env) end
        if bad then
          store_entry(KEYS[7], tonumber(ARGV[5]), now, bad, env, KEYS[12])
        elseif exp ~= 0 and exp <= now and string.byte(env, 3) == 0 then
          local dead = store_entry(KEYS[6], tonumber(ARGV[4]), now, 'expired', env, KEYS[12])
          index_put(KEYS[12], env, 'D', dead)
          forget_id(KEYS[8], env)
          release_lock(KEYS[13], env)
          expired = expired + 1
        else
          out[#out + 1] = env
          leases[#leases + 1] = deadline
          leases[#leases + 1] = env
          if string.byte(env, 5) >= 8 then flagged[#flagged + 1] = env end
          if interval > 0 then
            -- Kept as long as it matters, then gone by itself.
            local tat = from + interval
            redis.call('SET', KEYS[15] .. ':r:' .. key, string.format('%d', tat), 'PX',
              math.max(1, math.ceil((tat - us) / 1000)) + 1000)
          end
        end
      end
    end
  end
  if taken > 0 then count(KEYS[9], 'keyed', -taken) end
  if skipped > 0 and #out < max then
    held_back = 1
    limit_wait = math.max(limit_wait, key_wait)
  end
end
for p = 1, 3 do
  if keyed then break end
  while #out < max and budget > 0 do
    local want = math.min(max - #out, budget)
    local got = redis.call('LPOP', KEYS[p], want)
    if not got then break end
    budget = budget - #got
    for _, env in ipairs(got) do
      local bad, bits = invalid(env)
      if bad then
        dropped[#dropped + 1] = {bad, env}
      else
        local exp = expire_at(env)
        -- The TTL limits the wait for a first start; retries are not cut short.
        if exp ~= 0 and exp <= now and string.byte(env, 3) == 0 then
          dropped[#dropped + 1] = {'expired', env}
          expired = expired + 1
        else
          out[#out + 1] = env
          leases[#leases + 1] = deadline
          leases[#leases + 1] = env
          -- Bits 3 and up (indexed, unique lock, keyed) are rare: a plain
          -- job costs one comparison here.
          if bits >= 8 then flagged[#flagged + 1] = env end
        end
      end
    end
    local replies = popped[p]
    replies[#replies + 1] = got
    if #got < want then break end
  end
end
if #dropped > 0 or (#flagged > 0 and not keyed) then
  -- The stores of entries that do not run, and the index of flagged ones,
  -- are checked only now: when one is foreign, every popped entry goes back
  -- where it was.
  local wrong = wrong_type('_____zzsh__h')
  if wrong then
    for p = 1, 3 do
      local replies = popped[p]
      for r = #replies, 1, -1 do
        local got = replies[r]
        local back = {}
        for i = #got, 1, -1 do back[#back + 1] = got[i] end
        call_chunked({'LPUSH', KEYS[p]}, back)
      end
    end
    error({err = wrong})
  end
  for _, entry in ipairs(dropped) do
    if entry[1] == 'expired' then
      local dead = store_entry(KEYS[6], tonumber(ARGV[4]), now, 'expired', entry[2], KEYS[12])
      index_put(KEYS[12], entry[2], 'D', dead)
      forget_id(KEYS[8], entry[2])
      release_lock(KEYS[13], entry[2])
    else
      store_entry(KEYS[7], tonumber(ARGV[5]), now, entry[1], entry[2], KEYS[12])
    end
  end
end
if expired > 0 then
  count(KEYS[9], 'expired', expired)
  count_dead(KEYS[9], now, expired)
end
-- Budget spent on dead entries before a batch was found: call again at once.
if budget <= 0 and #out < max then next_due = 0 end
call_chunked({'ZADD', KEYS[5]}, leases)
-- Leased jobs with rare flags: index records name the worker; unique
-- locks of the modes released at the start (until started, debounce) go.
for _, env in ipairs(flagged) do
  if is_indexed(env) then index_put(KEYS[12], env, 'x', env, ARGV[7]) end
  if holds_lock(env) then release_lock(KEYS[13], env, true) end
end

if interval > 0 and #out > 0 and not keyed then
  -- The next theoretical start; the key lives as long as it matters.
  local tat = rate_from + #out * interval
  redis.call('SET', KEYS[14], string.format('%d', tat), 'PX',
    math.max(1, math.ceil((tat - now * 1000) / 1000)) + 1000)
end
-- Held back only when there was work to hold back (a key skipped for its
-- rate always had some).
if held_back == 2 or (held_back == 1 and not keyed) then
  local idle = #out < max
  if not idle and #out == 0 then
    if keyed then
      idle = redis.call('LLEN', KEYS[15]) == 0
    else
      idle = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
        + redis.call('LLEN', KEYS[3]) == 0
    end
  end
  if idle then
    held_back = 0
    limit_wait = 0
  end
end
if held_back > 0 then
  do
    local field = held_back == 1 and 'throttled_rate' or 'throttled_concurrency'
    count(KEYS[9], field, 1)
    redis.call('HSET', KEYS[9], field .. '_at', now)
  end
end

-- More work left: pass the wake-up on to the next idle worker (not when a
-- limit held the batch back: the next worker would be held back too).
if held_back == 0 and #out >= max and #out > 0 then
  if keyed then
    if redis.call('LLEN', KEYS[15]) > 0 then wake(KEYS[10]) end
  elseif redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) > 0 then
    wake(KEYS[10])
  end
end
return {out, next_due, now, expired, limit_wait, held_back}
