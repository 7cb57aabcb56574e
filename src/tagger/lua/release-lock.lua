-- release-lock.lua: deletes a single-flight lock, only if it is still ours.
-- KEYS[1]  the lock    ARGV[1]  its token
-- Returns: 1 when deleted, 0 when the lock is gone or another's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
