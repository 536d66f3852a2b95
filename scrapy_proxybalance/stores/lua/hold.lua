-- A process holds a request it took from the fleet's shared queue (waiting for a proxy, or downloading).
-- KEYS: its custody hash, the set of processes with custody; ARGV: token, the request serialized, the process
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
