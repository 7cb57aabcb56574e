-- wrk's own pipelining recipe: each request() returns `depth` requests back to back, and wrk counts every response.
local depth = tonumber(os.getenv("NS_PIPELINE") or "10")
init = function(args)
  local r = {}
  for i = 1, depth do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function()
  return req
end
