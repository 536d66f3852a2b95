-- Redis's own clock, in ms: every script starts with it, so no process's clock can break a cooldown
local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
