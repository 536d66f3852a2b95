-- A claimed pair was never used (its request went through another).
-- KEYS: in-flight set, the site's held set; ARGV: lease member, proxy
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
