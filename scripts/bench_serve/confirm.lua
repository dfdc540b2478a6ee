-- wrk script for scripts/bench_serve.py: presses "Confirm my signature" for distinct
-- pending signatures, one token per request, read from BENCH_TOKENS (one per line; the
-- script made them by signing). Thread i of k takes lines i, i+k, i+2k, …; a thread that
-- runs out starts again from its first token (those presses change nothing more, and
-- the script reports how many requests that was).
-- Environment: BENCH_TOKENS, BENCH_ORIGIN, BENCH_THREADS.
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  tokens = {}
  local k = tonumber(os.getenv("BENCH_THREADS"))
  local line = 0
  for token in io.lines(os.getenv("BENCH_TOKENS")) do
    if line % k == id - 1 then table.insert(tokens, token) end
    line = line + 1
  end
  n = 0
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
end

function request()
  n = n + 1
  local token = tokens[((n - 1) % #tokens) + 1]
  return wrk.format("POST", "/confirm/" .. token, nil, "go=1")
end
