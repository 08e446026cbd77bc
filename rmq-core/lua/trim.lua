-- Age retention of the dead-letter and parse-error stores, and removal of
-- old per-minute buckets: completions `m<minute>` and dead-letter counts
-- `d<minute>` after an hour (the throughput charts, the longest health
-- window).
-- KEYS: 1 dead, 2 errors, 3 stats
-- ARGV: 1 dead max age ms, 2 parse-error max age ms
-- Returns {dead removed, parse errors removed}.
check_types('zzh')
local now = now_ms()
local dead = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
local errors = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - tonumber(ARGV[2])))
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
