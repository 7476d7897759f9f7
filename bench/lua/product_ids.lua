-- GET /api/v1/products/{id} over a rotating set of ids (BENCH_MAX_ID from the environment).
local min_id = tonumber(os.getenv("BENCH_MIN_ID") or "1")
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "1000")
request = function()
  return wrk.format("GET", "/api/v1/products/" .. math.random(min_id, max_id))
end
