-- Workload 4: a CRUD mix on CareTeam: 10% create, 40% read, 20% update, 30% search.
-- Creates add a case-team-member-only team (no accountable professional, so the one-accountable
-- rule cannot refuse it); updates PUT a pre-fetched team back with a new name (same
-- participants, so the population's keyworking is unchanged); reads and searches hit the
-- loaded population.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local ids, nhs, patients, roles, updates
local PREFIX = urlencode("https://fhir.nhs.uk/Id/nhs-number|")
local ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"

function load_targets()
  ids = lines("careteams.txt")
  nhs = lines("nhs.txt")
  patients = lines("patients.txt")
  roles = lines("roles.txt")
  updates = {}
  for _, line in ipairs(lines("updates.tsv")) do
    local tab = string.find(line, "\t", 1, true)
    updates[#updates + 1] = { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) }
  end
end

function request()
  local r = math.random(100)
  if r <= 10 then
    local body = '{"resourceType":"CareTeam","status":"active","name":"Benchmark team",' ..
      '"subject":{"reference":"Patient/' .. pick(patients) .. '"},' ..
      '"participant":[{"role":[{"coding":[{"system":"' .. ROLE .. '","code":"case-team-member"}]}],' ..
      '"member":{"reference":"PractitionerRole/' .. pick(roles) .. '"}}]}'
    return wrk.format("POST", BASE .. "/CareTeam", WRITE_HEADERS, body)
  elseif r <= 50 then
    return wrk.format("GET", BASE .. "/CareTeam/" .. pick(ids), HEADERS)
  elseif r <= 70 then
    local u = pick(updates)
    local body = string.gsub(u[2], "@REV@", tostring(math.random(1000000)))
    return wrk.format("PUT", BASE .. "/CareTeam/" .. u[1], WRITE_HEADERS, body)
  else
    return wrk.format("GET", BASE .. "/CareTeam?subject:identifier=" .. PREFIX .. pick(nhs)
      .. "&status=active", HEADERS)
  end
end
