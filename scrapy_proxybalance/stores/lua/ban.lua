-- A site refused a proxy: the pair is off until the ban ends (never shortened).
-- KEYS: pair hash, the site's held set; ARGV: ban length (ms), ban level, keep (ms), proxy
local ends = now + tonumber(ARGV[1])
if ends > (tonumber(redis.call('HGET', KEYS[1], 'ban')) or 0) then
  redis.call('HSET', KEYS[1], 'ban', ends)
  redis.call('ZADD', KEYS[2], ends, ARGV[4])
end
if tonumber(ARGV[2]) > (tonumber(redis.call('HGET', KEYS[1], 'level')) or 0) then
  redis.call('HSET', KEYS[1], 'level', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[3]))
