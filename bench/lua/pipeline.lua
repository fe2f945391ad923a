-- wrk script: HTTP/1.1 pipelining, 16 requests per write.
--
-- Used by the muduo-rs benchmark runner (bench/src/runner/http.rs) as
--   wrk -c 100 -t 2 -d 3s -s bench/lua/pipeline.lua http://127.0.0.1:PORT/
-- wrk counts the requests in the string returned by request() when it
-- starts, then sends the next batch only after all of their responses have
-- arrived, so every connection keeps exactly `depth` requests in flight.

local depth = 16
local batch = nil

init = function(args)
   local one = wrk.format("GET", "/")
   local parts = {}
   for i = 1, depth do
      parts[i] = one
   end
   batch = table.concat(parts)
end

request = function()
   return batch
end
