-- Age retention of the dead-letter and parse-error stores, and removal of
-- old per-minute buckets: completions `m<minute>` and dead-letter counts
-- `d<minute>` after an hour (the throughput charts, the longest health
-- window).
-- KEYS: 1 dead, 2 errors, 3 stats, 4 index
-- ARGV: 1 dead max age ms, 2 parse-error max age ms
-- Returns {dead removed, parse errors removed}.
check_types('zzhh')
local now = now_ms()
local indexed = redis.call('HLEN', KEYS[4]) > 0
local function expire(key, max_age)
  local before = '(' .. (now - tonumber(max_age))
  if indexed then
    for _, entry in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', before)) do
      index_drop_entry(KEYS[4], entry)
    end
  end
  return redis.call('ZREMRANGEBYSCORE', key, '-inf', before)
end
local dead = expire(KEYS[1], ARGV[1])
local errors = expire(KEYS[2], ARGV[2])
local minute_now = math.floor(now / 60000)
local keep = {m = minute_now - 60, d = minute_now - 60}
local old = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
  local since = keep[string.sub(field, 1, 1)]
  if since then
    local minute = tonumber(string.sub(field, 2))
    if minute and minute < since then old[#old + 1] = field end
  end
end
call_chunked({'HDEL', KEYS[3]}, old)
return {dead, errors}
