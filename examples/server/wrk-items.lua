-- wrk script for examples/test-e2e.sh: GET /item?key=K with a Zipf-ish
-- (s = 1) choice among MLC_WRK_KEYS keys (default 10,000): 95% of requests
-- ask for a key that is in the database (k0 .. k9999, k0 the most popular),
-- 5% for one that is not (miss0 .. miss9999: cached negative entries).

local n = tonumber(os.getenv("MLC_WRK_KEYS") or "10000")
local hit_pct = tonumber(os.getenv("MLC_WRK_HIT_PCT") or "95")
local cdf = {}
local next_id = 0

function setup(thread)
	next_id = next_id + 1
	thread:set("id", next_id)
end

function init(args)
	math.randomseed(1000 + (id or 0))
	local sum = 0
	for i = 1, n do
		sum = sum + 1 / i
		cdf[i] = sum
	end
	for i = 1, n do
		cdf[i] = cdf[i] / sum
	end
end

-- the rank (0-based) whose cumulative weight first reaches u
local function zipf()
	local u = math.random()
	local lo, hi = 1, n
	while lo < hi do
		local mid = math.floor((lo + hi) / 2)
		if cdf[mid] < u then lo = mid + 1 else hi = mid end
	end
	return lo - 1
end

function request()
	local key
	if math.random(100) <= hit_pct then
		key = "k" .. zipf()
	else
		key = "miss" .. zipf()
	end
	return wrk.format("GET", "/item?key=" .. key)
end
