-- Workload 1 (and the floor): GET CareTeam/{id} for a random stored CareTeam.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local ids
function load_targets() ids = lines("careteams.txt") end
function request()
  return wrk.format("GET", BASE .. "/CareTeam/" .. pick(ids), HEADERS)
end
