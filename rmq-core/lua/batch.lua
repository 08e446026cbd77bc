-- Batch bookkeeping: a batch's record and the children that finished, both
-- under the batch's own hash tag (children may live on any topic / shard).
-- A child is counted once, whatever retried ack or re-run reports it again:
-- the finished children are a hash of child id -> outcome, written with
-- HSETNX, and only a new entry bumps its outcome's count.
-- KEYS: 1 record (hash), 2 finished children (hash: child id -> s|d|c)
-- ARGV: 1 operation: create | settle | fired | read, 2 retention ms;
--   create: 3 children, 4 callback topic ('' for none), 5 its priority
--           (0 high, 1 normal, 2 low), 6 its retries
--   settle: 3.. child id, outcome (s succeeded, d dead, c cancelled), ...
-- Returns the record as {field, value, ...} (counts s, d, c, total, fired,
-- topic, priority, retries, created), or false for an unknown batch.
check_types('hh')
local op = ARGV[1]
if op == 'create' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'total', ARGV[3], 'topic', ARGV[4], 'priority', ARGV[5],
    'retries', ARGV[6], 'created', now_ms(), 's', 0, 'd', 0, 'c', 0, 'fired', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return redis.call('HGETALL', KEYS[1])
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if op == 'settle' then
  for i = 3, #ARGV - 1, 2 do
    if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
      redis.call('HINCRBY', KEYS[1], ARGV[i + 1], 1)
    end
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
elseif op == 'fired' then
  redis.call('HSET', KEYS[1], 'fired', 1)
end
return redis.call('HGETALL', KEYS[1])
