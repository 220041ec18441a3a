-- serve_wrk_acts.lua - wrk script for bench/serve_wrk.sh acts: durable acts
-- on WRK_COUNT instances from WRK_FIRST. Each wrk thread owns half of
-- them and walks its half round and round: on even rounds li submits each
-- instance, on odd rounds wei returns it with a comment (the flow requires
-- one), so every POST is a real transition. An instance's next act comes a
-- whole round later, long after its previous one was answered. done()
-- prints "ok RATE P99_MS" (rate of 2xx answers) or "bad ..." when more than
-- 1% failed.
local first = tonumber(os.getenv("WRK_FIRST"))
local count = tonumber(os.getenv("WRK_COUNT"))
local li = "Bearer " .. os.getenv("WRK_LI")
local wei = "Bearer " .. os.getenv("WRK_WEI")
local threads = {}
local index = 0

function setup(thread)
	thread:set("part", index)
	index = index + 1
	table.insert(threads, thread)
end

-- wrk calls request() once on its first thread's script before any
-- connection opens (script_verify_request, to count pipelined requests)
-- and never sends what it returns. Thread 0 starts one step back, so that
-- unsent call does not use up an act: else its first instance's submit
-- was skipped and the return a round later answered 409.
local lo, n, k
function init(args)
	local parts = 2
	n = math.floor(count / parts)
	lo = first + part * n
	k = (part == 0) and -1 or 0
end

local submit_body = "{}"
local return_body = '{"comment":"the numbers for week 2 are missing"}'

-- The act of the k-th request of this thread.
local function act(i)
	local id = lo + (i % n)
	if math.floor(i / n) % 2 == 0 then
		return wrk.format("POST", "/api/instances/" .. id .. "/transitions/submit",
			{ ["Authorization"] = li, ["Content-Type"] = "application/json" }, submit_body)
	end
	return wrk.format("POST", "/api/instances/" .. id .. "/transitions/return",
		{ ["Authorization"] = wei, ["Content-Type"] = "application/json" }, return_body)
end

function request()
	if k < 0 then
		-- the unsent call: the first request, which the next call sends
		k = 0
		return act(0)
	end
	k = k + 1
	return act(k - 1)
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
