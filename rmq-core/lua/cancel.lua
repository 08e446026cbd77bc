-- Cancels a job by id: a queued one (pending, delayed or waiting for a
-- retry) ends at once, cancelled; a running one is asked to stop (its
-- worker learns of it at the next lease renewal).
-- KEYS: 1 index, 2 high, 3 normal, 4 low, 5 delayed, 6 processing, 7 dead,
--       8 ids, 9 stats, 10 cancel, 11 locks, 12 the ring of keys with
--       work (topics with a `rate_key`: a pending job waits in
--       `<12>:q:<key>`)
-- ARGV: 1 job id, 2 keep the job in the dead-letter store marked cancelled
--       (0/1), 3 dead max entries, 4 most running jobs scanned for a job
--       that is not indexed
-- Returns 1 cancelled, 2 asked to stop (running), 3 already asked, 4 it
-- had ended already (dead, cancelled or a parse error), 0 not found
-- (unknown, or completed).
check_types('hlllzzzshh')
local id = ARGV[1]
local keep = ARGV[2]
local now = now_ms()
local function ask()
  if redis.call('HEXISTS', KEYS[10], id) == 1 then return 3 end
  redis.call('HSET', KEYS[10], id, keep)
  return 2
end
local record = redis.call('HGET', KEYS[1], id)
if not record then
  -- Not indexed: it can still be found among the running jobs (few).
  for _, env in ipairs(redis.call('ZRANGE', KEYS[6], 0, tonumber(ARGV[4]) - 1)) do
    if not invalid(env) and env_id(env) == id then return ask() end
  end
  return 0
end
local r = cmsgpack.unpack(record)
local state, env = r[1], r[2]
local removed = 0
if state == 'p' then
  local key = fair_key(env)
  if key ~= '' then
    local sub = KEYS[12] .. ':q:' .. key
    removed = redis.call('LREM', sub, 1, env)
    if removed == 1 then
      count(KEYS[9], 'keyed', -1)
      if redis.call('LLEN', sub) == 0 then redis.call('LREM', KEYS[12], 0, key) end
    end
  end
  -- Not yet moved to its key's sub-queue (or a plain job).
  if removed == 0 then removed = redis.call('LREM', KEYS[2 + string.byte(env, 2)], 1, env) end
elseif state == 'd' then
  removed = redis.call('ZREM', KEYS[5], env)
elseif state == 'x' then
  if redis.call('ZSCORE', KEYS[6], env) then return ask() end
  return 0
else
  return 4
end
if removed == 0 then return 0 end
end_cancelled(KEYS[7], tonumber(ARGV[3]), KEYS[1], KEYS[8], KEYS[10], KEYS[9], now, env, keep)
release_lock(KEYS[11], env)
return 1
