-- Cron schedules of one topic (see rmq-core/src/broker/cron.rs).
-- KEYS: 1 the topic's cron hash, 2 pending list of the task's priority,
--       3 ids, 4 wake, 5 paused, 6 index (the topic's)
-- The cron hash holds, per schedule `N`: `N` next fire instant (ms, UTC,
-- schedule clock), `N:spec` its definition, `N:payload` the job payload,
-- `N:last` the instant of the last run enqueued, `N:last_id` its job id,
-- `N:paused` present while the schedule is paused.
-- ARGV: 1 op, 2 schedule name, then per op:
--   set:     3 spec, 4 payload, 5 next fire instant for a new or changed
--            spec. Returns the next fire instant kept.
--   tick:    3 the next fire instant read before (compare-and-set), 4 clock
--            offset ms, 5 priority byte, 6 ttl ms (0 = never), 7 max
--            retries, 8 overlap (`skip` | `allow`), 9 catch-up (`none` |
--            `one` | `all`), 10 grace ms (none) or bound ms (all), 11...
--            occurrences ascending from ARGV[3] to one past the horizon.
--            Returns {status, next, fired, skipped, server ms}; status is
--            `fired` (next moved on, `fired` jobs enqueued), `wait` (not
--            due), `moved` (another worker moved it: next is the new value)
--            or `gone` (no such schedule).
--   trigger: 3 clock offset ms, 4 priority byte, 5 ttl ms, 6 max retries.
--            Enqueues one run now; returns its job id, or false when the
--            schedule does not exist.
check_types('hls__h')
local cron = KEYS[1]
local op = ARGV[1]
local name = ARGV[2]

if op == 'set' then
  local spec = ARGV[3]
  local next = redis.call('HGET', cron, name)
  if next and redis.call('HGET', cron, name .. ':spec') == spec then
    redis.call('HSET', cron, name .. ':payload', ARGV[4])
    return next
  end
  redis.call('HSET', cron, name, ARGV[5], name .. ':spec', spec, name .. ':payload', ARGV[4])
  return ARGV[5]
end

-- Enqueues the run `id` exactly as enqueue.lua does with an explicit id
-- (flags: explicit, indexed); false when the id is already queued or
-- running.
local function enqueue_run(id, prio, ttl, max_retries, now)
  if redis.call('SISMEMBER', KEYS[3], id) == 1 then return false end
  local payload = redis.call('HGET', cron, name .. ':payload') or ''
  local expire = 0
  if ttl > 0 then expire = now + ttl end
  redis.call('SADD', KEYS[3], id)
  local env = struct.pack('>BBBBBI6I6B', 1, prio, 0, max_retries, 9, now, expire, #id) .. id .. payload
  redis.call('RPUSH', KEYS[2], env)
  index_put(KEYS[6], env, 'p')
  return true
end

local function wake_topic()
  if redis.call('EXISTS', KEYS[5]) == 0 then wake(KEYS[4]) end
end

if op == 'trigger' then
  if not redis.call('HGET', cron, name .. ':spec') then return false end
  local now = now_ms()
  local at = now + tonumber(ARGV[3])
  local id = 'cron:' .. name .. ':now:' .. string.format('%d', at)
  if not enqueue_run(id, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), now) then
    return false
  end
  redis.call('HSET', cron, name .. ':last', string.format('%d', at), name .. ':last_id', id)
  wake_topic()
  return id
end

-- tick
local stored = redis.call('HGET', cron, name)
local server = now_ms()
if not stored then return {'gone', '0', 0, 0, server} end
if stored ~= ARGV[3] then return {'moved', stored, 0, 0, server} end
local now = server + tonumber(ARGV[4])
local first = 11
if tonumber(ARGV[first]) > now then return {'wait', stored, 0, 0, server} end

-- The first future occurrence becomes the next fire time; the ones before
-- it are due. A list that ends before `now` keeps its last entry as next.
local last = #ARGV
local next_at = last
for i = first, last do
  if tonumber(ARGV[i]) > now then next_at = i break end
end
local due = {}
for i = first, next_at - 1 do due[#due + 1] = ARGV[i] end

local mode = ARGV[9]
local bound = tonumber(ARGV[10])
local fire = {}
if mode == 'all' then
  for _, at in ipairs(due) do
    if now - tonumber(at) <= bound then fire[#fire + 1] = at end
  end
elseif #due > 0 then
  local latest = due[#due]
  if mode == 'one' or now - tonumber(latest) <= bound then fire[1] = latest end
end

local skipped = #due - #fire
if #fire > 0 and redis.call('HEXISTS', cron, name .. ':paused') == 1 then
  skipped = #due
  fire = {}
end
if #fire > 0 and ARGV[8] == 'skip' then
  local previous = redis.call('HGET', cron, name .. ':last_id')
  if previous and redis.call('SISMEMBER', KEYS[3], previous) == 1 then
    skipped = #due
    fire = {}
  elseif #fire > 1 then
    -- One run at a time: only the latest of the missed occurrences.
    skipped = skipped + #fire - 1
    fire = {fire[#fire]}
  end
end

local prio = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local max_retries = tonumber(ARGV[7])
local fired = 0
for _, at in ipairs(fire) do
  local id = 'cron:' .. name .. ':' .. at
  if enqueue_run(id, prio, ttl, max_retries, server) then
    fired = fired + 1

    redis.call('HSET', cron, name .. ':last', at, name .. ':last_id', id)
  else
    skipped = skipped + 1
  end
end
redis.call('HSET', cron, name, ARGV[next_at])
if fired > 0 then wake_topic() end
return {'fired', ARGV[next_at], fired, skipped, server}
