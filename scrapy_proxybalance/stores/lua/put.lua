-- Write a record (a proxy's facts, a site's pace, a session, a pool change) and announce it on the stream.
-- KEYS: hash, stream; ARGV: kind, name, writer, keep (ms), stream length, then field, value pairs; a value
-- 'R<ms>' is a time that many ms from now (before now if negative) by Redis's clock
local fields = {}
for i = 6, #ARGV, 2 do
  local value = ARGV[i + 1]
  if string.sub(value, 1, 1) == 'R' then value = tostring(now + tonumber(string.sub(value, 2))) end
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'kind', ARGV[1], 'name', ARGV[2], 'writer', ARGV[3])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1
