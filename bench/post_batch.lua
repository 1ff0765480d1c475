-- POST /v1/sessions/batch with BENCH_BATCH sessions (server-chosen ids) per request.
local token = os.getenv("BENCH_TOKEN")
local size = tonumber(os.getenv("BENCH_BATCH") or "100")
local item = [[{"started_at":"2026-11-20T07:30:00+01:00","water_before_ml":400,
"water_after_ml":350,"ratings":[{"region":"adductors","side":"left","metric":"pain",
"before":6,"after":3},{"region":"adductors","side":"left","metric":"rom","before":35,
"after":42},{"region":"calves","metric":"stiffness","before":5,"after":4}]}]]
local items = {}
for i = 1, size do items[i] = item end
local body = '{"sessions":[' .. table.concat(items, ",") .. ']}'

request = function()
  return wrk.format("POST", "/v1/sessions/batch",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
