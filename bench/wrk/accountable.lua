-- Workload 2: CareTeam/$accountable for a random patient's NHS number.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local nhs
local PREFIX = urlencode("https://fhir.nhs.uk/Id/nhs-number|")
function load_targets() nhs = lines("nhs.txt") end
function request()
  return wrk.format("GET", BASE .. "/CareTeam/$accountable?patient=" .. PREFIX .. pick(nhs), HEADERS)
end
