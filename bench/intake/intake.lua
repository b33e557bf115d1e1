-- wrk script: POST /incidents at random points (read from BENCH_POINTS) and categories, each with
-- a fresh Idempotency-Key so every request is a real insert.
local points = {}
local categories = {}
local counter = 0
local thread_tag = ""

local threads = 0

function setup(thread)
  -- Keys must be unique across runs too: a reused key with another body is a 409.
  threads = threads + 1
  thread:set("tag", tostring(os.time()) .. tostring(threads))
end

function init(args)
  thread_tag = tag or tostring(math.random(1, 1e9))
  for line in io.lines(os.getenv("BENCH_POINTS")) do
    local lon, lat = line:match("([^ ]+) ([^ ]+)")
    points[#points + 1] = {lon, lat}
  end
  for c in os.getenv("BENCH_CATEGORIES"):gmatch("[^,]+") do
    categories[#categories + 1] = c
  end
  math.randomseed(tonumber(thread_tag))
end

function request()
  counter = counter + 1
  local p = points[math.random(#points)]
  local c = categories[math.random(#categories)]
  local body = string.format(
    '{"category":"%s","location":{"lon":%s,"lat":%s},"description":"bench",' ..
    '"reporter":{"kind":"system","id":"bench-intake"}}', c, p[1], p[2])
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. thread_tag .. "-" .. counter,
  }
  -- wrk.format does not merge these with the -H headers, so carry the token over ourselves.
  for name, value in pairs(wrk.headers) do
    if headers[name] == nil then headers[name] = value end
  end
  return wrk.format("POST", "/incidents", headers, body)
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
