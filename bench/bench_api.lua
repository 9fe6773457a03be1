-- wrk script for bench/bench_api.py: GET <path prefix><siren> with a SIREN drawn at random from a
-- file (one per line) for every request, so the lookups spread over the whole partition.
--   wrk -c64 -d10s --latency -s bench/bench_api.lua -H "X-API-Key: ..." http://host:port -- /v1/companies/ sirens.txt
local sirens = {}
local prefix = "/"

function init(args)
  prefix = args[1]
  for line in io.lines(args[2]) do
    sirens[#sirens + 1] = line
  end
end

function request()
  return wrk.format("GET", prefix .. sirens[math.random(#sirens)])
end
