-- wrk script for scripts/bench_serve.py: POSTs the sign form of one campaign, each
-- request with a distinct address (at a large provider, as a surge is) and a distinct
-- client address (X-Forwarded-For, believed from the trusted proxy 127.0.0.1), the form
-- token the script read from the petition page, and this server's Origin.
-- Environment: BENCH_SLUG, BENCH_CSRF, BENCH_ORIGIN, BENCH_RUN (keeps runs apart).
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local providers = {"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.de", "web.de", "orange.fr"}

function init(args)
  n = 0
  path = "/c/" .. os.getenv("BENCH_SLUG") .. "/sign"
  csrf = os.getenv("BENCH_CSRF")
  run = os.getenv("BENCH_RUN") or "r"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
end

function request()
  n = n + 1
  local email = "signer" .. run .. "t" .. id .. "n" .. n .. "%40" .. providers[(n % #providers) + 1]
  local body = "csrf=" .. csrf .. "&name=Bench+Signer&email=" .. email .. "&field.region=Lyon"
  -- 10.x.y.z from the request number: one client per request, as in a real surge.
  local client = string.format("10.%d.%d.%d", id % 256, math.floor(n / 256) % 256, n % 256)
  -- (wrk.format's headers argument would replace wrk.headers, not add to them.)
  wrk.headers["X-Forwarded-For"] = client
  return wrk.format("POST", path, nil, body)
end
