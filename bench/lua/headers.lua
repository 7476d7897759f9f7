-- Adds the headers named in BENCH_HEADERS ("Name: value|Name: value") to every request.
local raw = os.getenv("BENCH_HEADERS") or ""
for pair in string.gmatch(raw, "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end
