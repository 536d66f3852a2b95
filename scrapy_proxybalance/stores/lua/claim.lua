-- Take a (proxy, site) pair for a request, for the whole fleet: the first candidate that is free, else
-- (with a booking horizon) the candidate whose gap or pause ends soonest within it, booked for this request.
-- KEYS: the site's held set, then for each candidate its pair hash, its in-flight set, its proxy hash
-- ARGV: candidates, lease member, limit, gap (ms), lease ttl (ms), how many held pairs to report,
--       how long (ms) a pair just claimed is reported held past its gap (until its answer says),
--       booking horizon (ms, 0: never book), then the candidates' keys
-- Returns: the candidate taken (1-based, 0: none), Redis's time, the site's pairs held for a while
-- (proxy, until), so the process's picks avoid them, and when the request may go (Redis ms; now unless booked)
local n, member, limit, gap, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local report, guess, horizon = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local held = KEYS[1]
redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
local taken, at, soonest, soonest_at = 0, now, 0, now + horizon
for i = 1, n do
  local pair, busy, proxy = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local p = redis.call('HMGET', pair, 'answered', 'hold', 'ban')
  local free_at = math.max((tonumber(p[1]) or -1e15) + gap, tonumber(p[2]) or 0, tonumber(p[3]) or 0)
  local q = redis.call('HMGET', proxy, 'ejected_until', 'disabled')
  redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)
  if redis.call('ZCARD', busy) < limit and (tonumber(q[1]) or 0) <= now and q[2] ~= '1' then
    if free_at <= now then
      taken = i
      break
    elseif free_at <= soonest_at then
      soonest, soonest_at = i, free_at
    end
  end
end
if taken == 0 and soonest > 0 then taken, at = soonest, soonest_at end
if taken > 0 then
  local busy = KEYS[3 * taken]
  redis.call('ZADD', busy, at + ttl, member)
  redis.call('PEXPIRE', busy, at - now + ttl)
  -- held until its answer and gap: guessed for now, set when it is given back
  if limit == 1 or gap > 0 then redis.call('ZADD', held, at + gap + guess, ARGV[8 + taken]) end
end
redis.call('PEXPIRE', held, ttl + gap + (at - now))
return {taken, now, redis.call('ZRANGEBYSCORE', held, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, report), at}
