-- A request through a pair was answered: its gap (and pause) count from the answer.
-- KEYS: pair hash, in-flight set, the site's held set
-- ARGV: lease member, answered (ms ago), pause (ms from the answer, 0: none), gap (ms), keep (ms), proxy
redis.call('ZREM', KEYS[2], ARGV[1])
local answered = now - tonumber(ARGV[2])
if answered > (tonumber(redis.call('HGET', KEYS[1], 'answered')) or -1) then
  redis.call('HSET', KEYS[1], 'answered', answered)
end
local hold = tonumber(ARGV[3])
if hold > 0 and answered + hold > (tonumber(redis.call('HGET', KEYS[1], 'hold')) or 0) then
  redis.call('HSET', KEYS[1], 'hold', answered + hold)
end
local free_at = answered + math.max(hold, tonumber(ARGV[4]))
local keep = tonumber(ARGV[5])
if free_at > now then
  redis.call('ZADD', KEYS[3], free_at, ARGV[6])
  if redis.call('PTTL', KEYS[3]) < free_at - now + keep then redis.call('PEXPIRE', KEYS[3], free_at - now + keep) end
else
  redis.call('ZREM', KEYS[3], ARGV[6])
end
-- the pair lives on as long as its answer can matter (never shortened: a ban may hold it longer)
if redis.call('PTTL', KEYS[1]) < hold + keep then redis.call('PEXPIRE', KEYS[1], hold + keep) end
