-- Records topics in the set of known topics (for tools), even when Redis is
-- full: a worker must be able to start and drain a full Redis.
-- KEYS: 1 topics
-- ARGV: topic names
check_types('s')
call_chunked({'SADD', KEYS[1]}, ARGV)
return 0
