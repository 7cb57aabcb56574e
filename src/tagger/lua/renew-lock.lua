-- renew-lock.lua: extends a single-flight lock, only if it is still ours.
-- KEYS[1]  the lock    ARGV[1]  its token    ARGV[2]  its new time to live (ms)
-- Returns: 1 when extended, 0 when the lock is gone or another's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
