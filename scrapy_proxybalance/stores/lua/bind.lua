-- A session's binding, unless the fleet bound that generation (or a later one) already; then put.lua writes it.
-- KEYS and ARGV: as put.lua's (the binding's fields include 'generation')
local generation
for i = 6, #ARGV, 2 do if ARGV[i] == 'generation' then generation = tonumber(ARGV[i + 1]) end end
local current = redis.call('HMGET', KEYS[1], 'generation', 'proxy')
local held = tonumber(current[1]) or -1
if held > generation or (held == generation and current[2] and current[2] ~= '') then return 0 end
