-- Helpers shared by every rmq script (prepended to each one).
-- Envelope layout: see rmq-core/src/envelope.rs.

local CHUNK = 1000

local TYPES = {l = 'list', z = 'zset', s = 'set', h = 'hash', t = 'string'}

-- The error for the first key that holds a type rmq does not write there,
-- or nil. `spec` has one letter per KEYS entry: l list, z zset, s set,
-- h hash, t string, _ not checked.
local function wrong_type(spec)
  for i = 1, #spec do
    local want = TYPES[string.sub(spec, i, i)]
    if want then
      local got = redis.call('TYPE', KEYS[i])['ok']
      if got ~= want and got ~= 'none' then
        return 'WRONGTYPE rmq expects a ' .. want .. ' at key ' .. KEYS[i]
          .. ' but it holds a ' .. got .. '; nothing was changed. Another program'
          .. ' wrote this key: rename or delete it, or give rmq its own queue_prefix'
      end
    end
  end
  return nil
end

-- Refuses to go on, before any write, when a key holds another type than
-- rmq writes there (Redis does not roll back a script that fails half way).
local function check_types(spec)
  local wrong = wrong_type(spec)
  if wrong then error({err = wrong}) end
end

-- Adds to a statistics counter; a counter overwritten with something that
-- is not an integer starts again, instead of failing the transition.
local function count(key, field, n)
  if type(redis.pcall('HINCRBY', key, field, n)) == 'table' then
    redis.call('HSET', key, field, n)
  end
end

-- Counts `n` jobs dead-lettered now in the per-minute `d<minute>` bucket
-- of the stats hash (queue health: dead-letter growth).
local function count_dead(key, now, n)
  count(key, 'd' .. math.floor(now / 60000), n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- redis.call(prefix..., items...) in slices, to stay under Lua's unpack limit.
local function call_chunked(prefix, items)
  local n = #items
  local i = 1
  while i <= n do
    local args = {}
    for k = 1, #prefix do args[k] = prefix[k] end
    local last = math.min(i + CHUNK - 1, n)
    for k = i, last do args[#args + 1] = items[k] end
    redis.call(unpack(args))
    i = last + 1
  end
end

-- Why `env` is not an envelope this version reads, or nil.
local function invalid(env)
  local n = #env
  if n < 18 then return 'envelope is truncated (' .. n .. ' bytes)' end
  local v = string.byte(env, 1)
  if v ~= 1 then return 'envelope version ' .. v .. ' is not supported (this build reads version 1)' end
  local p = string.byte(env, 2)
  if p > 2 then return 'envelope priority byte ' .. p .. ' is invalid' end
  if 18 + string.byte(env, 18) > n then return 'envelope is truncated (' .. n .. ' bytes)' end
  return nil
end

local function env_id(env)
  return string.sub(env, 19, 18 + string.byte(env, 18))
end

local function is_explicit(env)
  return string.byte(env, 5) % 2 == 1
end

local function expire_at(env)
  return struct.unpack('>I6', env, 12)
end

local function with_attempt(env, attempt)
  return string.sub(env, 1, 2) .. string.char(attempt) .. string.sub(env, 4)
end

local function trim_count(key, max)
  local over = redis.call('ZCARD', key) - max
  if over > 0 then redis.call('ZREMRANGEBYRANK', key, 0, over - 1) end
end

-- Stores a [at, error, bytes] entry in a retention zset (dead or errors).
local function store_entry(key, max, now, err, bytes)
  redis.call('ZADD', key, now, cmsgpack.pack({now, err, bytes}))
  trim_count(key, max)
end

local function wake(key)
  if redis.call('LLEN', key) == 0 then redis.call('RPUSH', key, '1') end
end

-- Wakes a sleeping worker when `due` is earlier than every scheduled job,
-- so it re-arms its timer. Call before adding to `delayed`.
local function wake_if_earliest(delayed, wake_key, due)
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #first == 0 or tonumber(first[2]) > due then wake(wake_key) end
end

-- Drops the explicit id of a job that leaves the queue for good.
local function forget_id(ids, env)
  if is_explicit(env) then redis.call('SREM', ids, env_id(env)) end
end


-- Rate and concurrency limits ------------------------------------------------

-- How often a worker held back by a topic's concurrency re-checks it (acks
-- free slots without waking anyone).
local CONCURRENCY_POLL_MS = 20

-- `env` with flag bit `bit` (a power of two) set.
local function with_flag(env, bit)
  local flags = string.byte(env, 5)
  if math.floor(flags / bit) % 2 == 1 then return env end
  return string.sub(env, 1, 4) .. string.char(flags + bit) .. string.sub(env, 6)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- GCRA over the theoretical arrival time (µs) stored at `key` (a STRING)
-- or, with `field`, in the HASH `key`: how many of `want` jobs may start
-- now at one every `interval` µs with a burst of `burst`, and, when fewer
-- than `want` may, the ms until the next one may. Nothing is written:
-- call `gcra_take` with the number actually started.
local function gcra_allow(tat, now, interval, burst, want)
  if tat < now then tat = now end
  local room = now + burst * interval - tat
  local n = math.floor(room / interval)
  if n < 0 then n = 0 end
  if n >= want then return want, 0, tat end
  local wait = math.ceil((tat + (n + 1 - burst) * interval - now) / 1000)
  return n, math.max(1, wait), tat
end

-- Fair per-key sub-queues (topics with a `rate_key`): an envelope with flag
-- bit 32 carries its key after the id (1 length byte, then the key). Its
-- topic's jobs wait in `<ring>:q:<key>` lists, and the ring (a LIST) holds
-- each key with work once.

local function fair_key(env)
  if math.floor(string.byte(env, 5) / 32) % 2 == 0 then return '' end
  local at = 19 + string.byte(env, 18)
  return string.sub(env, at + 1, at + string.byte(env, at))
end

-- Appends envelopes to their keys' sub-queues (keys under the ring's hash
-- tag), adding each key that had no work to the ring; returns how many.
local function push_keyed(ring, envs)
  local by_key = {}
  local order = {}
  for _, env in ipairs(envs) do
    local key = fair_key(env)
    local list = by_key[key]
    if not list then
      list = {}
      by_key[key] = list
      order[#order + 1] = key
    end
    list[#list + 1] = env
  end
  for _, key in ipairs(order) do
    local list = by_key[key]
    local sub = ring .. ':q:' .. key
    local before = redis.call('LLEN', sub)
    call_chunked({'RPUSH', sub}, list)
    if before == 0 then redis.call('RPUSH', ring, key) end
  end
  return #envs
end
