-- retag.lua: sets the tags of one URL in the index, or drops the URL from it. Every key it touches is a KEY, and all
-- of them share the index's hash tag {P}, so the script runs on one Redis or on the one shard of a cluster that holds
-- the index. The caller read the URL's tags first (SMEMBERS) to name their keys; if they changed in between (another
-- worker re-tagged the URL), nothing is written and the script returns -1: the caller reads again and retries.
--
-- KEYS[1]           {P}:urls         sorted set: URL -> when it was tagged (ms)
-- KEYS[2]           {P}:tags         set of every tag in the index
-- KEYS[3]           {P}:url:<url>    set: the URL's tags
-- KEYS[4 .. 3+n]    {P}:tagged:<t>   sorted set (by URL, lexicographic) of each new tag
-- KEYS[4+n .. ]     {P}:tagged:<t>   the same, of each tag the URL had
-- ARGV[1]  the URL    ARGV[2]  now (ms), or 'drop' to remove the URL    ARGV[3]  n, the number of new tags
-- ARGV[4 .. 3+n]  the new tags          ARGV[4+n .. ]  the tags the caller read (one per old-tag key, in order)
-- Returns: the number of URLs in the index, or -1 when the URL's tags were not the ones read.
local url, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local m = #KEYS - 3 - n

local current = redis.call('SMEMBERS', KEYS[3])
if #current ~= m then return -1 end
local read = {}
for i = 1, m do read[ARGV[3 + n + i]] = true end
for _, tag in ipairs(current) do
  if not read[tag] then return -1 end
end

for i = 1, m do
  local key = KEYS[3 + n + i]
  redis.call('ZREM', key, url)
  if redis.call('ZCARD', key) == 0 then redis.call('SREM', KEYS[2], ARGV[3 + n + i]) end
end
redis.call('DEL', KEYS[3])

if now == 'drop' then
  redis.call('ZREM', KEYS[1], url)
else
  for i = 1, n do
    redis.call('ZADD', KEYS[3 + i], 0, url)
    redis.call('SADD', KEYS[2], ARGV[3 + i])
    redis.call('SADD', KEYS[3], ARGV[3 + i])
  end
  redis.call('ZADD', KEYS[1], tonumber(now), url)
end
return redis.call('ZCARD', KEYS[1])
