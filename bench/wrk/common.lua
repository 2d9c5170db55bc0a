-- Shared by every workload script (loaded with dofile from BENCH_WRK_DIR).
-- Why our own counters: wrk's "Non-2xx or 3xx" line counts 3xx as success and is not
-- machine-readable; done() prints one BENCH_RESULT JSON line that bench/run.py parses.
-- Environment: BENCH_TARGETS (directory of target files the loader wrote), BENCH_TOKEN (a
-- bearer token, empty for no auth), BENCH_BASE (path prefix, default /fhir).

BASE = os.getenv("BENCH_BASE") or "/fhir"
TARGETS = os.getenv("BENCH_TARGETS") or "."
HEADERS = { ["Accept"] = "application/fhir+json" }
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  HEADERS["Authorization"] = "Bearer " .. token
end
WRITE_HEADERS = { ["Content-Type"] = "application/fhir+json", ["Prefer"] = "return=minimal" }
for k, v in pairs(HEADERS) do WRITE_HEADERS[k] = v end

function lines(name)
  local out = {}
  for line in io.lines(TARGETS .. "/" .. name) do
    if line ~= "" then out[#out + 1] = line end
  end
  if #out == 0 then error("no targets in " .. name) end
  return out
end

function pick(list)
  return list[math.random(#list)]
end

function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

ok = 0
failed = 0
first_error = ""

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  if load_targets then load_targets() end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    failed = failed + 1
    if first_error == "" then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 400)
    end
  end
end

function done(summary, latency, requests)
  local ok_total, failed_total, err = 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    failed_total = failed_total + (t:get("failed") or 0)
    local e = t:get("first_error")
    if err == "" and e and e ~= "" then err = e end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"ok":%d,"non2xx":%d,' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, ok_total, failed_total,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
  if err ~= "" then
    io.write("BENCH_ERROR " .. string.gsub(err, "\n", " ") .. "\n")
  end
end
