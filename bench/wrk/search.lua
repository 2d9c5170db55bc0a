-- Workload 3: the active CareTeam of a random patient by NHS number, with its participants.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local nhs
local PREFIX = urlencode("https://fhir.nhs.uk/Id/nhs-number|")
function load_targets() nhs = lines("nhs.txt") end
function request()
  return wrk.format("GET", BASE .. "/CareTeam?subject:identifier=" .. PREFIX .. pick(nhs)
    .. "&status=active&_include=CareTeam:participant", HEADERS)
end
