-- Helpers shared by the rmq scripts: each script is prefixed with the ones it
-- names (see rmq-core/src/scripts.rs). A definition starts at a line
-- `local <name>` or `local function <name>`, with its comment right above.
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

-- Why `env` is not an envelope this version reads, or nil and its flags
-- byte (one read of the header's first bytes).
local function invalid(env)
  local n = #env
  if n < 18 then return 'envelope is truncated (' .. n .. ' bytes)' end
  local v, p, _, _, flags = string.byte(env, 1, 5)
  if v ~= 1 then return 'envelope version ' .. v .. ' is not supported (this build reads version 1)' end
  if p > 2 then return 'envelope priority byte ' .. p .. ' is invalid' end
  if 18 + string.byte(env, 18) > n then return 'envelope is truncated (' .. n .. ' bytes)' end
  return nil, flags
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

-- Job status index (envelope flag bit 8): `{P:T}:index` HASH, job id ->
-- msgpack [state, member, note]. state: 'p' pending, 'd' delayed (or
-- waiting for a retry), 'x' processing, 'D' dead, 'c' cancelled (kept in
-- the dead-letter store), 'E' parse error; member: the entry's exact bytes
-- in the store of that state; note: the worker holding a lease ('x') or the
-- last error (after a failed attempt).
local function is_indexed(env)
  return math.floor(string.byte(env, 5) / 8) % 2 == 1
end

-- Drops the index record of a dead-letter or parse-error entry that leaves
-- its store, when the record still points at that entry.
local function index_drop_entry(key, entry)
  local ok, decoded = pcall(cmsgpack.unpack, entry)
  if not ok or type(decoded) ~= 'table' then return end
  local env = decoded[3]
  if type(env) ~= 'string' or invalid(env) or not is_indexed(env) then return end
  local record = redis.call('HGET', key, env_id(env))
  if record and cmsgpack.unpack(record)[2] == entry then
    redis.call('HDEL', key, env_id(env))
  end
end

-- Keeps the `max` newest entries of a retention zset (dead or errors),
-- dropping the index records of the entries it removes.
local function trim_count(key, max, index)
  local over = redis.call('ZCARD', key) - max
  if over > 0 then
    if redis.call('HLEN', index) > 0 then
      for _, entry in ipairs(redis.call('ZRANGE', key, 0, over - 1)) do
        index_drop_entry(index, entry)
      end
    end
    redis.call('ZREMRANGEBYRANK', key, 0, over - 1)
  end
end

-- Stores a [at, error, bytes] entry in a retention zset (dead or errors);
-- returns the entry.
local function store_entry(key, max, now, err, bytes, index)
  local entry = cmsgpack.pack({now, err, bytes})
  redis.call('ZADD', key, now, entry)
  trim_count(key, max, index)
  return entry
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

-- Job status index, continued (see `is_indexed`).
local function index_put(key, env, state, member, note)
  if is_indexed(env) then
    redis.call('HSET', key, env_id(env), cmsgpack.pack({state, member or env, note or ''}))
  end
end

local function index_drop(key, env)
  if is_indexed(env) then redis.call('HDEL', key, env_id(env)) end
end

-- The note (last error) of an indexed job's record, or '' (kept when the
-- job moves on: a retried job shows its last error until it runs again).
local function index_note(key, env)
  if not is_indexed(env) then return '' end
  local record = redis.call('HGET', key, env_id(env))
  if not record then return '' end
  return cmsgpack.unpack(record)[3] or ''
end

-- Cancellation requests for running jobs: `{P:T}:cancel` HASH, job id ->
-- '1' keep the job in the dead-letter store marked cancelled, '0' drop it.
-- Returns the request for `env`'s job, or nil (one HLEN for a topic
-- without requests).
local function cancel_request(key, env)
  if redis.call('HLEN', key) == 0 then return nil end
  return redis.call('HGET', key, env_id(env))
end

-- Ends a job as cancelled: into the dead-letter store marked `cancelled`
-- (keep = '1'), or gone; its id is freed and the request forgotten.
local function end_cancelled(dead, dead_max, index, ids, cancel, stats, now, env, keep)
  if keep == '1' then
    index_put(index, env, 'c', store_entry(dead, dead_max, now, 'cancelled', env, index))
  else
    index_drop(index, env)
  end
  forget_id(ids, env)
  redis.call('HDEL', cancel, env_id(env))
  count(stats, 'cancelled', 1)
end

-- Unique jobs ---------------------------------------------------------------
-- A job holding a unique lock has envelope flag 16 and an entry in the
-- `{P:T}:locks` hash: job id -> mode byte (s until started, c until
-- completed, d debounce), the key's length (2 bytes), the key (after
-- `{P:T}:unique:`), then, for debounce, the job's envelope as queued.

local function holds_lock(env)
  return #env >= 18 and math.floor(string.byte(env, 5) / 16) % 2 == 1
end

-- The lock entry `v` of the locks hash: mode, key, queued envelope or ''.
local function lock_entry(v)
  local len = struct.unpack('>I2', v, 2)
  return string.sub(v, 1, 1), string.sub(v, 4, 3 + len), string.sub(v, 4 + len)
end

local function lock_entry_pack(mode, key, env)
  return mode .. struct.pack('>I2', #key) .. key .. (env or '')
end

-- The lock key `{P:T}:unique:<key>` beside `{P:T}:locks` (same hash tag).
local function lock_key(locks_key, key)
  return string.sub(locks_key, 1, #locks_key - 5) .. 'unique:' .. key
end

-- Releases the unique lock job `env` holds, if it holds one and the lock
-- still names this job (it may have expired and been taken by another).
-- With `at_start`, only the modes released at lease (until started,
-- debounce). A locks hash or lock key of a foreign type is left alone.
local function release_lock(locks_key, env, at_start)
  if not holds_lock(env) then return end
  local id = env_id(env)
  local v = redis.pcall('HGET', locks_key, id)
  if type(v) ~= 'string' then return end
  local mode, key = lock_entry(v)
  if at_start and mode == 'c' then return end
  redis.call('HDEL', locks_key, id)
  local lock = lock_key(locks_key, key)
  if redis.pcall('GET', lock) == id then redis.call('DEL', lock) end
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
