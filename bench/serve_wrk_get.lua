-- serve_wrk_get.lua - wrk script for bench/serve_wrk.sh get: GET
-- /api/instances/{id} on random ids among WRK_COUNT instances from
-- WRK_FIRST, as li (an employee who sees their own instances), or
-- WRK_PATH, when set, without a token. done()
-- prints "ok RATE P99_MS" (rate of 2xx answers) or "bad ..." when more
-- than 1% failed.
local first = tonumber(os.getenv("WRK_FIRST"))
local count = tonumber(os.getenv("WRK_COUNT"))
local auth = "Bearer " .. os.getenv("WRK_LI")
local path = os.getenv("WRK_PATH")

function init(args)
	math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
	if path then
		return wrk.format("GET", path)
	end
	local id = first + math.random(0, count - 1)
	return wrk.format("GET", "/api/instances/" .. id, { ["Authorization"] = auth })
end

function done(summary, latency, requests)
	local bad = summary.errors.status + summary.errors.connect + summary.errors.read
		+ summary.errors.write + summary.errors.timeout
	local good = summary.requests - bad
	local secs = summary.duration / 1e6
	local tag = (bad <= summary.requests / 100) and "ok" or "bad"
	io.write(string.format("%s %.1f %.2f %d %d\n", tag, good / secs,
		latency:percentile(99) / 1000, summary.requests, bad))
end
