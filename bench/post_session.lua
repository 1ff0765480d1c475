-- POST /v1/sessions with a unique client-chosen id and 3 ratings per request, spread over
-- the people whose tokens BENCH_TOKEN lists (comma-separated): many apps syncing at once.
local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKEN"), "[^,]+") do
  table.insert(tokens, token)
end
math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
local counter = 0
local thread_tag = tostring(math.random(0, 0xffff))

local function uuid()
  counter = counter + 1
  return string.format("%08x-%04x-4%03x-8%03x-%012x",
    math.random(0, 0x7fffffff), tonumber(thread_tag), counter % 0xfff,
    math.random(0, 0xfff), counter)
end

request = function()
  local body = string.format([[{"id":"%s","started_at":"2026-11-20T07:30:00+01:00",
"ended_at":"2026-11-20T07:45:00+01:00","tool":"foam_roller","water_before_ml":400,
"water_after_ml":350,"felt_unwell_after":false,"ratings":[
{"region":"adductors","side":"left","metric":"pain","before":6,"after":3},
{"region":"adductors","side":"left","metric":"rom","before":35,"after":42},
{"region":"adductors","side":"right","metric":"stiffness","before":5,"after":4}]}]], uuid())
  return wrk.format("POST", "/v1/sessions",
    {["Content-Type"] = "application/json",
     ["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1]}, body)
end
