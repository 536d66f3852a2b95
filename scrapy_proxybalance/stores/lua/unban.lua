-- The site took the proxy again: forget its ban level there. KEYS: pair hash
redis.call('HDEL', KEYS[1], 'level')
