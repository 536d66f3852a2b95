-- Take back what processes that died held: a process whose heartbeat ('alive:<writer>') has expired.
-- Each request goes to the one process that runs this first.
-- KEYS: the set of processes with custody; ARGV: the namespace's key prefix ('{ns}:'), the most to take
-- (every key is under the namespace's hash tag, as KEYS[1] is: one slot)
local taken, most = {}, tonumber(ARGV[2])
for _, writer in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'alive:' .. writer) == 0 then
    local custody = ARGV[1] .. 'custody:' .. writer
    local tokens = redis.call('HKEYS', custody)
    for _, token in ipairs(tokens) do
      if #taken >= most then return taken end
      taken[#taken + 1] = redis.call('HGET', custody, token)
      redis.call('HDEL', custody, token)
    end
    redis.call('SREM', KEYS[1], writer)
  end
end
return taken
