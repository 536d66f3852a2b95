-- A request a process held is done, or back in the shared queue. KEYS: its custody hash; ARGV: token
redis.call('HDEL', KEYS[1], ARGV[1])
