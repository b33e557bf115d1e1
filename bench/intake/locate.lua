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

-- Paced runs (BENCH_PAUSE_MS set): each connection waits this long after an answer.
local pause_ms = tonumber(os.getenv("BENCH_PAUSE_MS") or "")
if pause_ms then
  function delay()
    return pause_ms
  end
end
