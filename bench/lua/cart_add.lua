-- POST /api/v1/cart/items: each request a fresh session (so no line hits its maximum), one unit of
-- a rotating product.
local min_id = tonumber(os.getenv("BENCH_MIN_ID") or "1")
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "1000")
local counter = 0
request = function()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json",
                   ["X-Session-ID"] = string.format("bench-%d-%d", math.random(1, 1e9), counter)}
  local body = string.format('{"product_id": %d, "quantity": 1}', math.random(min_id, max_id))
  return wrk.format("POST", "/api/v1/cart/items", headers, body)
end
