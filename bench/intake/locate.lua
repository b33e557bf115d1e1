-- wrk script: GET /locate at random points read from BENCH_POINTS.
local points = {}

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tag", tostring(os.time()) .. tostring(threads))
end

function init(args)
  for line in io.lines(os.getenv("BENCH_POINTS")) do
    local lon, lat = line:match("([^ ]+) ([^ ]+)")
    points[#points + 1] = {lon, lat}
  end
  math.randomseed(tonumber(tag or "1"))
end

function request()
  local p = points[math.random(#points)]
  return wrk.format("GET", "/locate?lon=" .. p[1] .. "&lat=" .. p[2])
end

-- Paced runs (BENCH_PAUSE_MS set): after each answer a connection waits a random pause with
-- this mean, exponentially distributed, so the clients' requests arrive as independent random
-- events (a Poisson stream) rather than in step (32 clients firing together make bursts). A
-- pause is capped below uvicorn's 5 s keep-alive, which would otherwise close the idle
-- connection under a request about to be sent (a client-side "read error", not a failure).
local pause_ms = tonumber(os.getenv("BENCH_PAUSE_MS") or "")
if pause_ms then
  function delay()
    return math.min(4000, math.floor(-math.log(1 - math.random()) * pause_ms + 0.5))
  end
end
