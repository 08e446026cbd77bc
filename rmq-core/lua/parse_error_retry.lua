-- Re-enqueues parse-error entries whose stored bytes are a job envelope (the
-- payload failed to decode, e.g. under an older build) as new runs: attempt 1
-- again, enqueued now (a TTL counts from now), at the back of their pending
-- lists.
-- KEYS: 1 errors, 2 high, 3 normal, 4 low, 5 ids, 6 wake, 7 index
-- ARGV: 1 strict (0/1), then parse-error entries (exact members)
-- An entry stays in place when it is gone (missing), its bytes are not an
-- envelope (invalid), or a queued or running job holds its explicit id
-- (busy). With strict = 1, one such entry leaves every entry in place.
-- Every check, key types included, comes before the first write: the script
-- makes all of its changes or none.
-- Returns {moved, busy explicit ids, invalid count, missing count}.
local want = {'zset', 'list', 'list', 'list', 'set', 'list', 'hash'}
for i = 1, 7 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= want[i] then
    return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a ' .. want[i])
  end
end
local strict = ARGV[1] == '1'
local now = now_ms()
local moves = {}
local busy = {}
local invalid_count = 0
local missing = 0
local seen = {}
local claimed = {}
for i = 2, #ARGV do
  local entry = ARGV[i]
  if seen[entry] then
    -- Given twice: moved once.
  elseif not redis.call('ZSCORE', KEYS[1], entry) then
    missing = missing + 1
  else
    seen[entry] = true
    local ok, decoded = pcall(cmsgpack.unpack, entry)
    local env = nil
    if ok and type(decoded) == 'table' then env = decoded[3] end
    if type(env) ~= 'string' or invalid(env) then
      invalid_count = invalid_count + 1
    elseif is_explicit(env)
        and (claimed[env_id(env)] or redis.call('SISMEMBER', KEYS[5], env_id(env)) == 1) then
      busy[#busy + 1] = env_id(env)
    else
      if is_explicit(env) then claimed[env_id(env)] = true end
      moves[#moves + 1] = {entry, env}
    end
  end
end
if strict and (#busy > 0 or invalid_count > 0 or missing > 0) then
  return {0, busy, invalid_count, missing}
end
for _, move in ipairs(moves) do
  local env = move[2]
  local enqueued = struct.unpack('>I6', env, 6)
  local expire = expire_at(env)
  if expire ~= 0 then expire = now + math.max(0, expire - enqueued) end
  local fresh = string.sub(env, 1, 2) .. string.char(0) .. string.sub(env, 4, 5)
    .. struct.pack('>I6I6', now, expire) .. string.sub(env, 18)
  redis.call('ZREM', KEYS[1], move[1])
  redis.call('RPUSH', KEYS[string.byte(env, 2) + 2], fresh)
  if is_explicit(env) then redis.call('SADD', KEYS[5], env_id(env)) end
  index_put(KEYS[7], fresh, 'p')
end
if #moves > 0 then wake(KEYS[6]) end
return {#moves, busy, invalid_count, missing}
