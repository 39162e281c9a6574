-- Test endpoints for lua/t/run.sh (loaded by the nginx it starts).
--
--   GET /t?test=NAME      runs one in-worker test; the body is "ok" or
--                         "not ok" followed by one line per failed check
--   GET /xw?op=...        one operation for the cross-worker tests; the body
--                         is "w=<worker id> v=<value> h=<hit level> e=<err>"
--   GET /n?key=K          how many times the callback of K ran (all workers)

local mlc = require "resty.mlc"

local _M = {}

local ARENA = os.getenv("MLC_T_ARENA")
local caches = {}
local counters = ngx.shared.counters
local seq = 0


local function uniq(name)
    seq = seq + 1
    return name .. ":" .. ngx.worker.id() .. ":" .. seq .. ":" .. ngx.now()
end


-- ---------------------------------------------------------------- --
-- Setup

function _M.init()
    -- The named arena: created here, before the workers fork; mode 0666 so
    -- that workers running as another user can also attach it by name.
    -- On a reload (run.sh's test "reload") it exists, and is attached.
    local aopts = { size = 16 * 1024 * 1024, mode = 438, max_items = 20000,
                    exclusive = true }
    local reload = not mlc.arena(ARENA, aopts)
    if reload then
        aopts.exclusive = nil
        assert(mlc.arena(ARENA, aopts))
    end
    -- An anonymous arena: only shared with the workers forked after this.
    assert(mlc.arena("anon-arena", { anonymous = true,
                                     size = 8 * 1024 * 1024 }))

    -- handles created before fork, used in the workers
    caches.c = assert(mlc.new("c", ARENA))
    caches.a = assert(mlc.new("a", "anon-arena"))
    caches.ser = assert(mlc.new("ser", ARENA, {
        l1_serializer = function(s)
            return { wrapped = s }
        end,
    }))
    caches.small = assert(mlc.new("small", ARENA, { lru_size = 2 }))

    -- room for 100,000-key L1 tests and the benchmarks
    assert(mlc.arena(ARENA .. "-big", { size = 192 * 1024 * 1024, mode = 438,
                                        max_items = 1048576 }))

    -- a get in the master: its L1 entry is inherited by every worker, which
    -- must drop it on first use (the key may change before that; on a
    -- reload it holds what the test "fork" set)
    local v, err = caches.c:get("init-key", nil, function()
        return "from-init"
    end)
    assert(v == "from-init" or (reload and v ~= nil), err)
end


function _M.init_worker()
    -- The other way: attach the arena by name in each worker (foreign: the
    -- master that created it may be root while workers are nobody).
    assert(mlc.arena(ARENA, { create = false, foreign = true }))
    caches.w = assert(mlc.new("w", ARENA, { ttl = 60 }))
end


-- ---------------------------------------------------------------- --
-- A tiny assertion kit

local fails

local function fmt(v)
    if type(v) == "string" then
        return string.format("%q", v)
    end
    return tostring(v)
end


local function check(cond, what)
    if not cond then
        fails[#fails + 1] = what
    end
    return cond
end


-- check that get()/peek() returned exactly (v, err, hit)
local function expect(what, ev, eerr, ehit, v, err, hit)
    local ok = v == ev and err == eerr and hit == ehit
    check(ok, what .. ": expected " .. fmt(ev) .. ", " .. fmt(eerr) .. ", "
              .. fmt(ehit) .. " got " .. fmt(v) .. ", " .. fmt(err) .. ", "
              .. fmt(hit))
    return ok
end


local function deep_eq(a, b)
    if type(a) ~= type(b) then
        return false
    end
    if type(a) ~= "table" then
        return a == b or (a ~= a and b ~= b)
    end
    for k, v in pairs(a) do
        if not deep_eq(v, b[k]) then
            return false
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false
        end
    end
    return true
end


local function throws(pattern, f, ...)
    local ok, err = pcall(f, ...)
    check(not ok and tostring(err):find(pattern, 1, true),
          "expected an error like " .. fmt(pattern) .. ", got "
          .. (ok and "no error" or fmt(err)))
end


-- Bytes stored in L2 as they are, as a program other than resty.mlc
-- stores them (mlcctl set): through libmlc's mlc_set on the instance's
-- handle, for ttl_ms.
local function raw_set(c, key, bytes, ttl_ms)
    local ffi = require "ffi"
    local lib = ffi.load(os.getenv("MLC_LIB"))
    local co = ffi.new("struct mlc_call_options")
    co.size = ffi.sizeof(co)
    co.ttl_ms = ttl_ms
    return lib.mlc_set(c.h, key, #key, bytes, #bytes, co)
end


-- whether /dev/shm/<name> exists
local function shm_file(name)
    local f = io.open("/dev/shm/" .. name, "r")
    if f then
        f:close()
    end
    return f ~= nil
end


-- ---------------------------------------------------------------- --
-- In-worker tests

local T = {}


T.levels = function()
    local c = caches.c
    local k = uniq("levels")
    local calls = 0
    local cb = function()
        calls = calls + 1
        return "v1"
    end

    expect("first get is L3", "v1", nil, 3, c:get(k, nil, cb))
    expect("second get is L1", "v1", nil, 1, c:get(k, nil, cb))
    c.lru:delete(k)
    expect("after L1 delete: L2", "v1", nil, 2, c:get(k, nil, cb))
    expect("then L1 again", "v1", nil, 1, c:get(k, nil, cb))
    check(calls == 1, "callback ran " .. calls .. " times, expected 1")

    expect("miss without callback", nil, nil, -1, c:get(uniq("none")))
    c.lru:delete(k)
    expect("L2 hit without callback", "v1", nil, 2, c:get(k))

    -- arguments are passed through
    expect("callback arguments", "xy", nil, 3,
           c:get(uniq("args"), nil, function(a, b) return a .. b end,
                 "x", "y"))

    -- own L1 survives the invalidation record of its own fill
    local k2 = uniq("own")
    c:get(k2, nil, cb)
    c:update()
    expect("own fill not invalidated by its own record", "v1", nil, 1,
           c:get(k2, nil, cb))
end


T.types = function()
    local c = caches.c
    local values = {
        { "string", "hello" },
        { "empty string", "" },
        { "binary string", "a\0b\255" },
        { "float", 0.1 },
        { "big integer", 2^53 },
        { "negative", -12.5 },
        { "infinity", math.huge },
        { "true", true },
        { "false", false },
        { "table", { a = 1, b = { c = "x", [1] = true, [2.5] = false },
                     [10] = "sparse", [true] = { {}, { "deep" } } } },
        { "array", { 1, 2, 3, "four" } },
    }
    for _, tv in ipairs(values) do
        local name, val = tv[1], tv[2]
        local k = uniq("types")
        local v, err, hit = c:get(k, nil, function() return val end)
        check(deep_eq(v, val) and err == nil and hit == 3,
              name .. " from L3: got " .. fmt(v) .. " " .. fmt(hit))
        v, err, hit = c:get(k, nil, function() return "wrong" end)
        check(deep_eq(v, val) and hit == 1,
              name .. " from L1: got " .. fmt(v) .. " " .. fmt(hit))
        c.lru:delete(k)
        v, err, hit = c:get(k, nil, function() return "wrong" end)
        check(deep_eq(v, val) and hit == 2,
              name .. " from L2: got " .. fmt(v) .. " " .. fmt(hit) .. " "
              .. fmt(err))
        local ttl, perr, pv = c:peek(k)
        check(deep_eq(pv, val) and perr == nil and ttl and ttl > 0,
              name .. " from peek: got " .. fmt(pv) .. " " .. fmt(perr))
    end

    -- a value too deep (cyclic) for the table encoding
    local t = {}
    t.self = t
    local v, err = c:get(uniq("cyclic"), nil, function() return t end)
    check(v == nil and err and err:find("could not encode table value", 1,
                                        true),
          "cyclic table: got " .. fmt(v) .. " " .. fmt(err))
end


T.negative = function()
    local c = caches.c
    local k = uniq("neg")
    local calls = 0
    local cb = function()
        calls = calls + 1
        return nil
    end

    local o = { neg_ttl = 0.6 }
    expect("nil from L3", nil, nil, 3, c:get(k, o, cb))
    expect("nil from L1", nil, nil, 1, c:get(k, o, cb))
    c.lru:delete(k)
    expect("nil from L2", nil, nil, 2, c:get(k, o, cb))
    check(calls == 1, "callback ran " .. calls .. " times, expected 1")
    local ttl, err, v = c:peek(k)
    check(ttl and ttl > 0 and ttl <= 0.6 and err == nil and v == nil,
          "peek of a negative: " .. fmt(ttl) .. " " .. fmt(v))

    ngx.sleep(0.7)
    expect("nil after neg_ttl: L3 again", nil, nil, 3, c:get(k, o, cb))
    check(calls == 2, "callback ran " .. calls .. " times, expected 2")
end


T.ttl = function()
    local c = caches.c
    local k = uniq("ttl")
    local calls = 0
    local cb = function()
        calls = calls + 1
        return "v" .. calls
    end

    local o = { ttl = 0.5 }
    expect("ttl: L3", "v1", nil, 3, c:get(k, o, cb))
    expect("ttl: L1", "v1", nil, 1, c:get(k, o, cb))
    ngx.sleep(0.6)
    expect("ttl: expired, L3 again", "v2", nil, 3, c:get(k, o, cb))

    -- an L2 hit goes into L1 with the remaining TTL only
    local k2 = uniq("ttl-remaining")
    local o2 = { ttl = 1 }
    c:get(k2, o2, cb)
    c.lru:delete(k2)
    ngx.sleep(0.3)
    local v, _, hit = c:get(k2, o2, cb)
    check(hit == 2, "promotion: hit " .. fmt(hit))
    local ttl = c:peek(k2)
    check(ttl and ttl <= 0.71, "remaining TTL after promotion: " .. fmt(ttl))
    ngx.sleep(0.8)
    v, _, hit = c:get(k2, o2, cb)
    check(hit == 3, "L1 expired together with L2: hit " .. fmt(hit)
                    .. " value " .. fmt(v))

    -- ttl 0: never expires
    local k3 = uniq("ttl0")
    c:get(k3, { ttl = 0 }, cb)
    local t0 = c:peek(k3)
    check(t0 == 0, "peek of a ttl=0 value gives 0: " .. fmt(t0))

    -- the callback's third return value overrides ttl
    local k4 = uniq("cbttl")
    c:get(k4, { ttl = 100 }, function() return "x", nil, 0.2 end)
    local t4 = c:peek(k4)
    check(t4 and t4 <= 0.2, "callback ttl override: " .. fmt(t4))
    ngx.sleep(0.3)
    expect("callback ttl expired", nil, nil, -1, c:get(k4))

    -- a negative ttl from the callback: not cached
    local k5 = uniq("bypass")
    local n5 = 0
    local bypass = function()
        n5 = n5 + 1
        return "nc", nil, -1
    end
    expect("ttl < 0: L3", "nc", nil, 3, c:get(k5, nil, bypass))
    expect("ttl < 0: L3 again", "nc", nil, 3, c:get(k5, nil, bypass))
    check(n5 == 2 and c:peek(k5) == nil, "ttl < 0 cached nothing")

    -- a bypassed value is never encoded (mlcache): any type is returned
    local v7, e7, h7 = c:get(uniq("bypass-null"), nil,
                             function() return ngx.null, nil, -1 end)
    check(v7 == ngx.null and e7 == nil and h7 == 3,
          "bypass of an uncacheable value: " .. fmt(v7) .. " " .. fmt(e7))

    -- a non-number third value is ignored
    local k6 = uniq("badttl")
    c:get(k6, { ttl = 100 }, function() return "x", nil, "soon" end)
    local t6 = c:peek(k6)
    check(t6 and t6 > 99, "non-number callback ttl ignored: " .. fmt(t6))
end


T.errors = function()
    local c = caches.c
    local k = uniq("err")
    local calls = 0

    expect("soft error", nil, "boom", nil,
           c:get(k, nil, function()
               calls = calls + 1
               return nil, "boom"
           end))
    expect("errors are not cached", nil, "boom", nil,
           c:get(k, nil, function()
               calls = calls + 1
               return nil, "boom"
           end))
    check(calls == 2, "callback ran " .. calls .. " times, expected 2")
    expect("value and error", "foo", "err", nil,
           c:get(k, nil, function() return "foo", "err" end))
    local _, err = c:get(k, nil, function() return nil, { 1 } end)
    check(type(err) == "string" and err:find("^table: "),
          "non-string error is tostring()ed: " .. fmt(err))

    local v, err2, hit = c:get(k, nil, function() error("oops") end)
    check(v == nil and hit == nil and type(err2) == "string"
          and err2:find("^callback threw an error: .*oops")
          and err2:find("stack traceback", 1, true),
          "thrown error: " .. fmt(err2))
    _, err2 = c:get(k, nil, function() error({}) end)
    check(type(err2) == "string"
          and err2:find("^callback threw an error: table: "),
          "thrown table: " .. fmt(err2))
    check(c:peek(k) == nil, "nothing cached after errors")

    -- the flight is free again at once after a throw
    local t0 = ngx.now()
    expect("after a throw", "fine", nil, 3,
           c:get(k, nil, function() return "fine" end))
    check(ngx.now() - t0 < 0.5, "no lock left behind")

    -- a value that cannot be cached throws (as mlcache), and frees the lock
    local k2 = uniq("userdata")
    throws("cannot cache value of type userdata",
           c.get, c, k2, nil, function() return ngx.null end)
    t0 = ngx.now()
    expect("after an uncacheable value", "ok", nil, 3,
           c:get(k2, nil, function() return "ok" end))
    check(ngx.now() - t0 < 0.5, "no lock left behind (E3)")

    -- whatever else is thrown while get() holds the key's flight (here the
    -- __tostring of the callback's error object) gives the flight up first
    local k3 = uniq("tkthrow")
    local bad = setmetatable({}, { __tostring = function()
        error("no tostring for you")
    end })
    throws("no tostring for you", c.get, c, k3, nil, function()
        return nil, bad
    end)
    ngx.update_time()
    t0 = ngx.now()
    expect("after a throw in the flight", "ok", nil, 3,
           c:get(k3, { resty_lock_opts = { timeout = 1 } },
                 function() return "ok" end))
    ngx.update_time()
    check(ngx.now() - t0 < 0.5, "no lock left behind by a throw: waited "
                                .. (ngx.now() - t0) .. " s")
end


T.resurrect = function()
    local c = caches.c
    local k = uniq("res")
    local calls = 0
    local fail = function()
        calls = calls + 1
        return nil, "backend down"
    end
    local opts = { ttl = 0.2, resurrect_ttl = 1 }

    expect("resurrect: first load", "v", nil, 3,
           c:get(k, opts, function() return "v" end))
    ngx.sleep(0.3)
    expect("stale value resurrected", "v", nil, 4, c:get(k, opts, fail))
    expect("resurrected value from L1", "v", nil, 1, c:get(k, opts, fail))
    c.lru:delete(k)
    expect("resurrected value from L2", "v", nil, 4, c:get(k, opts, fail))
    check(calls == 1, "callback ran " .. calls .. " times, expected 1")
    ngx.sleep(1.1)
    expect("resurrected again after resurrect_ttl", "v", nil, 4,
           c:get(k, opts, fail))
    ngx.sleep(1.1)
    expect("recovered", "v2", nil, 3,
           c:get(k, opts, function() return "v2" end))

    -- a negative is resurrected too
    local k2 = uniq("resneg")
    local o2 = { neg_ttl = 0.2, resurrect_ttl = 1 }
    expect("negative: first load", nil, nil, 3,
           c:get(k2, o2, function() return nil end))
    ngx.sleep(0.3)
    expect("negative resurrected", nil, nil, 4, c:get(k2, o2, fail))
    c.lru:delete(k2)
    expect("resurrected negative from L2", nil, nil, 4, c:get(k2, o2, fail))

    -- no resurrection for a thrown error, nor without resurrect_ttl
    local k3 = uniq("resthrow")
    c:get(k3, opts, function() return "v" end)
    ngx.sleep(0.3)
    local v, err = c:get(k3, opts, function() error("x") end)
    check(v == nil and err and err:find("callback threw", 1, true),
          "thrown error does not resurrect: " .. fmt(v) .. " " .. fmt(err))
    expect("no resurrect_ttl", nil, "backend down", nil,
           c:get(k3, { ttl = 0.2 }, fail))

    -- a waiter of a load that resurrects gets the resurrected value, as
    -- mlcache's waiters read it from the dict, with or without a
    -- resurrect_ttl of its own
    local k5 = uniq("reswait")
    c:get(k5, opts, function() return "old" end)
    ngx.sleep(0.3)
    local t5 = ngx.thread.spawn(function()
        return c:get(k5, opts, function()
            ngx.sleep(0.2)
            return nil, "backend down"
        end)
    end)
    ngx.sleep(0.05)
    local v6, e6, h6 = c:get(k5, { ttl = 0.2 }, fail)
    local _, v7, e7, h7 = ngx.thread.wait(t5)
    expect("resurrecting loader", "old", nil, 4, v7, e7, h7)
    expect("its waiter", "old", nil, 4, v6, e6, h6)

    -- nor does a waiter serve a stale value it read before it waited, when
    -- the key was purged (or deleted) meanwhile: not after a lock timeout,
    -- nor after the loader's error
    for _, how in ipairs { "timeout", "error" } do
        local cw = assert(mlc.new("reswaiter-" .. how, ARENA))
        local k6 = uniq("reswaiter")
        cw:get(k6, opts, function() return "old" end)
        ngx.sleep(0.3)
        local t6 = ngx.thread.spawn(function()
            return cw:get(k6, { ttl = 0.2 }, function()
                ngx.sleep(0.3)
                return nil, "backend down"
            end)
        end)
        ngx.sleep(0.02)
        local t7 = ngx.thread.spawn(function()
            return cw:get(k6, { ttl = 0.2, resurrect_ttl = 1,
                                resty_lock_opts = {
                                    timeout = how == "timeout" and 0.15 or 2,
                                } }, fail)
        end)
        ngx.sleep(0.05)
        assert(cw:purge())
        local _, v8, e8, h8 = ngx.thread.wait(t7)
        ngx.thread.wait(t6)
        check(v8 == nil, "purge while waiting (" .. how .. "): the waiter "
                         .. "served " .. fmt(v8) .. " " .. fmt(e8) .. " "
                         .. fmt(h8))
    end

    -- a set, delete or purge made while the failing callback ran is not
    -- undone by the resurrection of the value it replaced: the stale
    -- value was read before the change (here purge: "purged values are
    -- never served again")
    for _, change in ipairs { "set", "delete", "purge" } do
        local cc = assert(mlc.new("resfence-" .. change, ARENA))
        local k4 = uniq("resfence")
        cc:get(k4, opts, function() return "old" end)
        ngx.sleep(0.3)
        local t = ngx.thread.spawn(function()
            return cc:get(k4, opts, function()
                ngx.sleep(0.2)
                return nil, "backend down"
            end)
        end)
        ngx.sleep(0.05)
        if change == "set" then
            assert(cc:set(k4, nil, "new"))
        elseif change == "delete" then
            assert(cc:delete(k4))
        else
            assert(cc:purge())
        end
        local _, v4, e4 = ngx.thread.wait(t)
        check(v4 ~= "old", change .. " during the load: the loader served "
                           .. "the value it replaced: " .. fmt(v4) .. " "
                           .. fmt(e4))
        local want = change == "set" and "new" or nil
        local v5, e5, h5 = cc:get(k4)
        check(v5 == want, change .. " during the load: then get() gave "
                          .. fmt(v5) .. " " .. fmt(e5) .. " " .. fmt(h5))
        cc.lru:delete(k4)
        v5, e5, h5 = cc:get(k4)
        check(v5 == want, change .. " during the load: then get() from L2 "
                          .. "gave " .. fmt(v5) .. " " .. fmt(e5) .. " "
                          .. fmt(h5))
    end
end


-- an expired L2 value that resty.mlc did not write (empty, shorter than
-- its header, an unknown tag: mlcctl set), a failing callback and
-- resurrect_ttl: nothing to resurrect, a deserialize error returned (not
-- thrown), the foreign bytes not stored again, and the flight given up
-- (the next get does not wait out the lock timeout)
T.resurrect_foreign = function()
    local c = caches.c
    local opts = { resurrect_ttl = 10, resty_lock_opts = { timeout = 1 } }
    local fail = function() return nil, "boom" end
    for _, bytes in ipairs { "", "abcde", "xyzxyzxyzxyz" } do
        local what = "stale " .. fmt(bytes)
        local k = uniq("resforeign")
        check(raw_set(c, k, bytes, 50) == 0, what .. ": raw set")
        ngx.sleep(0.15)
        local sets = c:stats().sets
        for i = 1, 2 do
            ngx.update_time()
            local t0 = ngx.now()
            local ok, v, err, hit = pcall(c.get, c, k, opts, fail)
            ngx.update_time()
            check(ok and v == nil and hit == nil and type(err) == "string"
                  and err:find("^could not deserialize value after mlc "
                               .. "retrieval: "),
                  what .. ", get " .. i .. ": " .. fmt(ok) .. " " .. fmt(v)
                  .. " " .. fmt(err) .. " " .. fmt(hit))
            check(ngx.now() - t0 < 0.5, what .. ", get " .. i .. " waited "
                                        .. (ngx.now() - t0) .. " s")
        end
        check(c:stats().sets == sets, what .. ": not stored again ("
                                      .. (c:stats().sets - sets) .. " sets)")
        local _, perr = c:peek(k, true)
        check(perr and perr:find("could not deserialize", 1, true),
              what .. ": left in L2 as it was: " .. fmt(perr))
        expect(what .. ": then a load", "fine", nil, 3,
               c:get(k, opts, function() return "fine" end))
    end
end


T.l1_serializer = function()
    local c = caches.ser
    local k = uniq("ser")
    local v, err, hit = c:get(k, nil, function() return "raw" end)
    check(type(v) == "table" and v.wrapped == "raw" and hit == 3,
          "serialized from L3: " .. fmt(v) .. " " .. fmt(err))
    local v2, _, hit2 = c:get(k, nil, function() return "raw" end)
    check(v2 == v and hit2 == 1, "L1 hit returns the same object")
    c.lru:delete(k)
    local v3, _, hit3 = c:get(k, nil, function() return "raw" end)
    check(type(v3) == "table" and v3 ~= v and v3.wrapped == "raw"
          and hit3 == 2, "serialized again from L2")
    local _, _, pv = c:peek(k)
    check(pv == "raw", "peek gives the raw L2 value: " .. fmt(pv))

    -- never for negatives
    local calls = 0
    local cn = caches.c
    local kn = uniq("sernil")
    expect("negative not serialized", nil, nil, 3,
           cn:get(kn, { l1_serializer = function()
               calls = calls + 1
               return "x"
           end }, function() return nil end))
    check(calls == 0, "l1_serializer called for a nil")

    -- per-call serializer wins; errors
    local kc = uniq("serc")
    expect("per-call serializer", "RAW", nil, 3,
           c:get(kc, { l1_serializer = function(s) return s:upper() end },
                 function() return "raw" end))
    local _, e1 = cn:get(uniq("serthrow"), { l1_serializer = function()
        error("bad")
    end }, function() return "x" end)
    check(e1 and e1:find("^l1_serializer threw an error: "),
          "serializer throws: " .. fmt(e1))
    local _, e2 = cn:get(uniq("sernilret"), { l1_serializer = function()
        return nil
    end }, function() return "x" end)
    check(e2 == "l1_serializer returned a nil value",
          "serializer returns nil: " .. fmt(e2))
    local _, e3 = cn:get(uniq("sererr"), { l1_serializer = function()
        return nil, "custom"
    end }, function() return "x" end)
    check(e3 == "custom", "serializer returns nil, err: " .. fmt(e3))

    -- set() goes through it too
    local ks = uniq("serset")
    assert(c:set(ks, nil, "s"))
    local vs, _, hs = c:get(ks)
    check(type(vs) == "table" and vs.wrapped == "s" and hs == 1,
          "set() applies the l1_serializer")
end


T.peek = function()
    local c = caches.c
    local k = uniq("peek")
    check(c:peek(k) == nil, "peek of an absent key is nil")
    c:get(k, { ttl = 10 }, function() return "pv" end)
    local ttl, err, v, stale = c:peek(k)
    check(ttl and ttl > 9 and ttl <= 10 and err == nil and v == "pv"
          and stale == false,
          "peek: " .. fmt(ttl) .. " " .. fmt(v) .. " " .. fmt(stale))

    local k2 = uniq("peekstale")
    c:get(k2, { ttl = 0.1 }, function() return "old" end)
    ngx.sleep(0.2)
    check(c:peek(k2) == nil, "expired: nil without stale")
    local t2, _, v2, st2 = c:peek(k2, true)
    check(t2 and t2 < 0 and v2 == "old" and st2 == true,
          "peek(stale): " .. fmt(t2) .. " " .. fmt(v2) .. " " .. fmt(st2))
    local t3 = c:peek(k2, true)
    check(t3 and t3 < 0, "peek(stale) does not evict")
    throws("key must be a string", c.peek, c, 1)
end


T.set_delete_purge = function()
    local c = caches.c
    local k = uniq("set")
    local cb = function() return "from cb" end

    check(c:set(k, nil, "a") == true, "set returns true")
    expect("get after set: L1", "a", nil, 1, c:get(k, nil, cb))
    c.lru:delete(k)
    expect("get after set: L2", "a", nil, 2, c:get(k, nil, cb))
    assert(c:set(k, nil, { t = 1 }))
    local v, _, hit = c:get(k, nil, cb)
    check(type(v) == "table" and v.t == 1 and hit == 1, "set a table")
    assert(c:set(k, nil, nil))
    expect("set nil: a negative", nil, nil, 1, c:get(k, nil, cb))
    c.lru:delete(k)
    expect("set nil from L2", nil, nil, 2, c:get(k, nil, cb))
    assert(c:set(k, { ttl = 0.2 }, "short"))
    ngx.sleep(0.3)
    expect("set with ttl expires", nil, nil, -1, c:get(k))

    assert(c:set(k, nil, "b"))
    check(c:delete(k) == true, "delete returns true")
    expect("get after delete runs the callback", "from cb", nil, 3,
           c:get(k, nil, cb))
    check(c:delete(uniq("absent")) == true, "deleting an absent key")

    local k1, k2 = uniq("p1"), uniq("p2")
    c:get(k1, nil, cb)
    c:get(k2, nil, cb)
    check(c:purge() == true, "purge returns true")
    expect("purged (no callback)", nil, nil, -1, c:get(k1))
    check(c:peek(k2) == nil and c:peek(k2, true) == nil,
          "purged values are gone, stale too")
    expect("after purge: L3", "from cb", nil, 3, c:get(k2, nil, cb))
    check(c:update() == true, "update() returns true")

    -- namespaces are isolated
    local ki = uniq("iso")
    caches.c:set(ki, nil, "in c")
    expect("other namespace does not see it", nil, nil, -1,
           caches.small:get(ki))

    throws("key must be a string", c.set, c, false, nil, 1)
    throws("cannot cache value of type function", c.set, c, k, nil,
           function() end)
end


T.bulk = function()
    local c = caches.c
    local ka, kb, kc, kd, ke = uniq("ba"), uniq("bb"), uniq("bc"),
                               uniq("bd"), uniq("be")
    c:get(ka, nil, function() return "A" end)        -- L1
    c:get(kb, nil, function() return "B" end)        -- L2
    c.lru:delete(kb)

    local res = c:get_bulk({
        ka, nil, function() return "wrong" end, nil,
        kb, nil, function() return "wrong" end, nil,
        kc, nil, function(x) return x end, "C",
        kd, nil, function() return nil, "bulk err" end, nil,
        ke, nil, function() return nil end, nil,
        n = 5,
    }, { concurrency = 2 })
    check(res.n == 15, "res.n = " .. fmt(res.n))
    local want = {
        { "A", nil, 1 }, { "B", nil, 2 }, { "C", nil, 3 },
        { nil, "bulk err", nil }, { nil, nil, 3 },
    }
    local n = 0
    for i, v, err, hit in mlc.each_bulk_res(res) do
        n = n + 1
        local w = want[i]
        expect("bulk op " .. i, w[1], w[2], w[3], v, err, hit)
    end
    check(n == 5, "each_bulk_res iterated " .. n .. " times")

    local b = mlc.new_bulk(3)
    b:add(kc, nil, function() return "wrong" end)
    b:add(uniq("bf"), { ttl = 5 }, function(x) return x * 2 end, 21)
    local r2 = c:get_bulk(b)
    expect("new_bulk op 1", "C", nil, 1, r2[1], r2[2], r2[3])
    expect("new_bulk op 2", 42, nil, 3, r2[4], r2[5], r2[6])

    throws("bulk must be a table", c.get_bulk, c)
    throws("bulk must have n field", c.get_bulk, c, { "k", nil,
           function() end, nil })
    throws("key at index 5 must be a string for operation 2 (got boolean)",
           c.get_bulk, c, { "a", nil, function() end, nil,
                            false, nil, function() end, nil, n = 2 })
    throws("callback at index 3 must be a function for operation 1 (got nil)",
           c.get_bulk, c, { "a", nil, nil, nil, n = 1 })
    throws("opts.concurrency must be > 0", c.get_bulk, c,
           { n = 0 }, { concurrency = 0 })
    throws("options at index 2 for operation 1 are invalid: opts.ttl must be "
           .. "a number", c.get_bulk, c,
           { uniq("bo"), { ttl = "x" }, function() end, nil, n = 1 })
    throws("res must have res.n field", mlc.each_bulk_res, {})
end


T.validation = function()
    throws("name must be a string", mlc.new, 1, ARENA)
    throws("shm must be a string", mlc.new, "x", nil)
    throws("opts must be a table", mlc.new, "x", ARENA, true)
    throws("opts.ttl must be >= 0", mlc.new, "x", ARENA, { ttl = -1 })
    throws("opts.neg_ttl must be a number", mlc.new, "x", ARENA,
           { neg_ttl = "1" })
    throws("opts.resurrect_ttl must be >= 0", mlc.new, "x", ARENA,
           { resurrect_ttl = -1 })
    throws("opts.shm_set_tries must be >= 1", mlc.new, "x", ARENA,
           { shm_set_tries = 0 })
    throws("opts.lru_size must be a finite number", mlc.new, "x", ARENA,
           { lru_size = 0 / 0 })
    throws("opts.lru_size must be a finite number", mlc.new, "x", ARENA,
           { lru_size = math.huge })
    throws("opts.l1_serializer must be a function", mlc.new, "x", ARENA,
           { l1_serializer = 1 })
    throws("opts.resty_lock_opts must be a table", mlc.new, "x", ARENA,
           { resty_lock_opts = 1 })
    throws("cannot specify both of opts.ipc_shm and opts.ipc", mlc.new, "x",
           ARENA, { ipc_shm = "a", ipc = {} })
    local c, err = mlc.new("x", "no-such-arena-" .. ngx.worker.pid())
    check(c == nil and err and err:find("^no such mlc arena: "),
          "missing arena: " .. fmt(err))

    -- accepted and documented as without effect
    local c2 = mlc.new("opts", ARENA, { shm_miss = "miss",
                                        shm_locks = "locks",
                                        ipc_shm = "ipc", lru_size = 10,
                                        shm_set_tries = 2,
                                        resty_lock_opts = { timeout = 1,
                                                            exptime = 10 } })
    check(c2 ~= nil, "all mlcache options accepted")

    local cc = caches.c
    throws("key must be a string", cc.get, cc, 1)
    throws("callback must be nil or a function", cc.get, cc, "k", nil, 1)
    throws("opts must be a table", cc.get, cc, uniq("o"), 1, function() end)
    throws("opts.ttl must be a number", cc.get, cc, uniq("o"), { ttl = "x" },
           function() end)
    local v, e = cc:get("", nil, function() return 1 end)
    check(v == nil and e and e:find("invalid key", 1, true),
          "empty key: " .. fmt(e))
    -- the same answer from set(), delete() and peek() (not mlc's "invalid
    -- argument", nor "key or value over the limit" for a long key)
    local long = string.rep("k", 65536)
    for _, k in ipairs { "", long } do
        local what = #k == 0 and "empty key" or "key of 65536 bytes"
        local ok1, e1 = cc:set(k, nil, "v")
        check(ok1 == nil and e1 and e1:find("^invalid key: "),
              what .. ": set: " .. fmt(e1))
        local ok2, e2 = cc:delete(k)
        check(ok2 == nil and e2 and e2:find("^invalid key: "),
              what .. ": delete: " .. fmt(e2))
        local ttl, e3 = cc:peek(k)
        check(ttl == nil and e3 and e3:find("^invalid key: "),
              what .. ": peek: " .. fmt(e3))
    end

    -- NaN is no number >= 0: refused as a negative one is (taken, a ttl
    -- lost the callback's value at the store, and a lock timeout never
    -- ended a wait)
    local nan = 0 / 0
    throws("opts.ttl must be >= 0", mlc.new, "x", ARENA, { ttl = nan })
    throws("opts.neg_ttl must be >= 0", mlc.new, "x", ARENA,
           { neg_ttl = nan })
    throws("opts.shm_set_tries must be >= 1", mlc.new, "x", ARENA,
           { shm_set_tries = nan })
    throws("opts.resty_lock_opts.timeout must be a number >= 0", mlc.new,
           "x", ARENA, { resty_lock_opts = { timeout = nan } })
    throws("opts.ttl must be >= 0", cc.get, cc, uniq("o"), { ttl = nan },
           function() return "v" end)
    throws("opts.resurrect_ttl must be >= 0", cc.get, cc, uniq("o"),
           { resurrect_ttl = nan }, function() return "v" end)
    throws("opts.resty_lock_opts.timeout must be a number >= 0", cc.get, cc,
           uniq("o"), { resty_lock_opts = { timeout = nan } },
           function() return "v" end)
    throws("opts.neg_ttl must be >= 0", cc.set, cc, uniq("o"),
           { neg_ttl = nan })
    throws("opts.shm_set_tries must be >= 1", cc.set, cc, uniq("o"),
           { shm_set_tries = nan }, "v")

    -- names are C strings to mlc: one with a NUL byte is refused with
    -- nil, err, as mlc refuses an empty one (never cut at the NUL)
    local function refused(what, x, err)
        check(x == nil and type(err) == "string"
              and err:find("invalid argument (the name has a NUL byte)", 1,
                           true),
              what .. ": " .. fmt(x) .. " " .. fmt(err))
    end
    local x, xe = mlc.new("", ARENA)
    check(x == nil and type(xe) == "string", "empty name: " .. fmt(xe))
    refused("new: NUL in the name", mlc.new("c\0x", ARENA))
    refused("new: NUL in the arena name", mlc.new("x", ARENA .. "\0x"))
    refused("arena: NUL in the name",
            mlc.arena(ARENA .. "\0x", { create = false }))
    refused("unlink: NUL in the name", mlc.unlink(ARENA .. "\0x"))
    check(shm_file(ARENA), "unlink of " .. ARENA .. "\\0x kept " .. ARENA)
    refused("namespace_stats: NUL in the name",
            mlc.namespace_stats(ARENA, "c\0x"))

    -- mlc.arena()'s options: a wrong type, or a number its field cannot
    -- hold, throws (as new()'s and get()'s options do), and opens nothing
    local bad = ARENA .. "-bad"
    throws("opts.size must be a number", mlc.arena, bad, { size = "64m" })
    throws("opts.size must be a whole number from 0 to 2^64 - 1", mlc.arena,
           bad, { size = -1 })
    throws("opts.bytes must be a whole number", mlc.arena, bad,
           { bytes = 1 / 0 })
    throws("opts.max_items must be a whole number from 0 to 2^32 - 1",
           mlc.arena, bad, { max_items = 2 ^ 32 })
    throws("opts.page_size must be a whole number", mlc.arena, bad,
           { page_size = 4096.5 })
    throws("opts.log_cells must be a whole number", mlc.arena, bad,
           { log_cells = 0 / 0 })
    throws("opts.mode must be a number", mlc.arena, bad, { mode = "0644" })
    throws("opts.create must be a boolean", mlc.arena, bad, { create = 0 })
    throws("opts.anonymous must be a boolean", mlc.arena, bad,
           { anonymous = "yes" })
    throws("name must be a string", mlc.unlink, nil)
    check(not shm_file(bad), "no arena made from bad options")
    local ok, ae = mlc.arena(bad, { size = 1 })
    check(ok == nil and type(ae) == "string"
          and ae:find("invalid argument", 1, true),
          "a size mlc refuses: nil, err: " .. fmt(ae))
end


-- lua-resty-mlcache's checks of the dict names, with its messages; the
-- names may be lua_shared_dicts (mlcache's nginx.conf keeps working) or
-- mlc arenas
T.options = function()
    local c, err = mlc.new("o1", ARENA, { shm_miss = "foo" })
    check(c == nil and err == "no such lua_shared_dict for opts.shm_miss: foo",
          "shm_miss: " .. fmt(err))
    c, err = mlc.new("o2", ARENA, { shm_locks = "foo" })
    check(c == nil
          and err == "no such lua_shared_dict for opts.shm_locks: foo",
          "shm_locks: " .. fmt(err))
    c, err = mlc.new("o3", ARENA, { ipc_shm = "foo" })
    check(c == nil and err == "failed to initialize mlcache IPC (could not "
                              .. "instantiate mlcache.ipc): no such "
                              .. "lua_shared_dict: foo",
          "ipc_shm: " .. fmt(err))
    throws("opts.shm_miss must be a string", mlc.new, "x", ARENA,
           { shm_miss = 1 })
    throws("opts.shm_locks must be a string", mlc.new, "x", ARENA,
           { shm_locks = 1 })
    throws("opts.ipc_shm must be a string", mlc.new, "x", ARENA,
           { ipc_shm = 1 })
    throws("opts.ipc must be a table", mlc.new, "x", ARENA, { ipc = 1 })
    throws("opts.ipc.register_listeners must be a function", mlc.new, "x",
           ARENA, { ipc = {} })
    throws("opts.ipc.broadcast must be a function", mlc.new, "x", ARENA,
           { ipc = { register_listeners = function() end } })
    throws("opts.ipc.poll must be a function", mlc.new, "x", ARENA,
           { ipc = { register_listeners = function() end,
                     broadcast = function() end, poll = 1 } })
    c, err = mlc.new("o4", ARENA, { shm_miss = "miss", shm_locks = "locks",
                                    ipc_shm = "ipc" })
    check(c ~= nil, "existing lua_shared_dicts accepted: " .. fmt(err))
    c, err = mlc.new("o5", ARENA, { shm_miss = ARENA, shm_locks = ARENA })
    check(c ~= nil, "mlc arenas accepted: " .. fmt(err))
end


-- a custom IPC driven as lua-resty-mlcache drives it
T.ipc = function()
    local name = uniq("ipc")
    local calls = {}
    local events
    local ipc = {
        register_listeners = function(ev)
            events = ev
            calls[#calls + 1] = "register"
        end,
        broadcast = function(channel, data)
            calls[#calls + 1] = "broadcast " .. channel .. " " .. fmt(data)
            return true
        end,
        poll = function(timeout)
            calls[#calls + 1] = "poll " .. fmt(timeout)
            return true
        end,
    }
    local c = assert(mlc.new(name, ARENA, { ipc = ipc }))
    check(calls[1] == "register" and #calls == 1, "register_listeners once")
    check(events and events.invalidation
          and events.invalidation.channel == "mlcache:invalidations:" .. name
          and type(events.invalidation.handler) == "function"
          and events.purge and events.purge.channel == "mlcache:purge:" .. name
          and type(events.purge.handler) == "function",
          "channels: " .. fmt(events and events.invalidation
                              and events.invalidation.channel))

    calls = {}
    check(c:set("k", nil, "v") == true, "set")
    check(c:delete("k") == true, "delete")
    check(c:purge() == true, "purge")
    check(c:update(3.5) == true, "update")
    check(c:update() == true, "update()")
    local want = {
        "broadcast mlcache:invalidations:" .. name .. ' "k"',
        "broadcast mlcache:invalidations:" .. name .. ' "k"',
        "broadcast mlcache:purge:" .. name .. ' ""',
        "poll 3.5", "poll nil",
    }
    check(#calls == #want, "calls: " .. table.concat(calls, ", "))
    for i, w in ipairs(want) do
        check(calls[i] == w, "call " .. i .. ": " .. fmt(calls[i])
                             .. " wanted " .. fmt(w))
    end

    -- the handlers act on this worker's L1, as mlcache's
    c:get("h", nil, function() return "hv" end)
    events.invalidation.handler("h")
    expect("after the invalidation handler: L2", "hv", nil, 2, c:get("h"))
    events.purge.handler()
    expect("after the purge handler: L2", "hv", nil, 2, c:get("h"))

    -- errors, with mlcache's texts
    ipc.broadcast = function() return nil, "bc down" end
    local c2 = assert(mlc.new(uniq("ipc2"), ARENA, { ipc = ipc }))
    local ok, err = c2:set("k", nil, 1)
    check(ok == nil and err == "could not broadcast update: bc down",
          "set: " .. fmt(err))
    ok, err = c2:delete("k")
    check(ok == nil and err == "could not broadcast deletion: bc down",
          "delete: " .. fmt(err))
    ok, err = c2:purge()
    check(ok == nil and err == "could not broadcast purge: bc down",
          "purge: " .. fmt(err))
    ipc.poll = function() return nil, "poll down" end
    local c3 = assert(mlc.new(uniq("ipc3"), ARENA, { ipc = ipc }))
    ok, err = c3:update()
    check(ok == nil and err == "could not poll ipc events: poll down",
          "update: " .. fmt(err))
    ipc.register_listeners = function() return nil, "no way" end
    local c4
    c4, err = mlc.new(uniq("ipc4"), ARENA, { ipc = ipc })
    check(c4 == nil and err == "failed to initialize custom IPC "
          .. "(opts.ipc.register_listeners returned an error): no way",
          "register_listeners error: " .. fmt(err))
end


-- get_bulk runs the callbacks in bulk order (mlcache: the first chunks in
-- light threads spawned in order, the last in the calling thread), with
-- per-operation errors
T.bulk_order = function()
    local c = caches.c
    for _, conc in ipairs { 1, 2, 3, 4, 10 } do
        local order = {}
        local b = mlc.new_bulk(6)
        for i, name in ipairs { "a", "b", "c", "d", "e", "f" } do
            b:add(uniq("bo-" .. name), nil, function(x)
                order[#order + 1] = x
                if x == "c" then
                    return nil, "no c"
                elseif x == "d" then
                    error("d threw")
                end
                return x .. i
            end, name)
        end
        local res = c:get_bulk(b, { concurrency = conc })
        check(table.concat(order) == "abcdef",
              "concurrency " .. conc .. ": callbacks ran "
              .. table.concat(order, ","))
        expect("op a", "a1", nil, 3, res[1], res[2], res[3])
        expect("op c", nil, "no c", nil, res[7], res[8], res[9])
        check(res[10] == nil and type(res[11]) == "string"
              and res[11]:find("callback threw an error: ", 1, true)
              and res[11]:find("d threw", 1, true) and res[12] == nil,
              "op d: " .. fmt(res[11]))
        expect("op f", "f6", nil, 3, res[16], res[17], res[18])
    end

    -- callbacks that yield still start in bulk order
    local order = {}
    local b = mlc.new_bulk(4)
    for _, name in ipairs { "a", "b", "c", "d" } do
        b:add(uniq("boy-" .. name), nil, function(x)
            order[#order + 1] = x
            ngx.sleep(0.001)
            return x
        end, name)
    end
    c:get_bulk(b, { concurrency = 4 })
    check(table.concat(order) == "abcd",
          "yielding callbacks started " .. table.concat(order, ","))
end


-- TTLs follow ngx.now(), as lua-resty-mlcache's
T.ttl_ngx = function()
    local c = caches.c
    local k = uniq("tn")
    assert(c:set(k, { ttl = 19 }, "v"))
    local t0 = ngx.now()
    local ttl = c:peek(k)
    check(ttl == 19, "peek right after set(ttl = 19): " .. fmt(ttl))
    ngx.sleep(1)
    ttl = c:peek(k)
    local want = 19 - (ngx.now() - t0)
    check(ttl and math.abs(ttl - want) < 1e-6,
          "after ngx.sleep(1): " .. fmt(ttl) .. ", ngx.now() says "
          .. fmt(want))
    check(ttl and math.ceil(ttl) == 18, "ceil after 1 s: " .. fmt(ttl))

    -- through a callback, and from another arena's first store
    local k2 = uniq("tn2")
    c:get(k2, { ttl = 0.3 }, function() return "x" end)
    local t2 = c:peek(k2)
    check(t2 == 0.3, "callback value, ttl 0.3: " .. fmt(t2))
    local a = (ARENA .. "-" .. uniq("tn")):gsub("[^%w-]", "-")
    assert(mlc.arena(a, { size = 8 * 1024 * 1024 }))
    local fresh = assert(mlc.new("f", a))
    fresh:get("k", { ttl = 0.3 }, function() return "first" end)
    local t3 = fresh:peek("k")
    mlc.unlink(a)
    check(t3 == 0.3, "first store in a fresh arena: " .. fmt(t3))

    -- an L1 entry promoted from L2 expires when the value does
    local k4 = uniq("tn4")
    c:get(k4, { ttl = 0.5 }, function() return "p" end)
    c.lru:delete(k4)
    ngx.sleep(0.2)
    expect("promoted", "p", nil, 2, c:get(k4))
    ngx.sleep(0.31)
    expect("expired with L2", nil, nil, -1, c:get(k4))
    local t4, _, v4, st4 = c:peek(k4, true)
    check(t4 and t4 < 0 and t4 > -0.2 and v4 == "p" and st4 == true,
          "peek(stale) of the expired value: " .. fmt(t4) .. " " .. fmt(v4))
end


-- an opts.lru of the user's (resty.lrucache)
T.custom_lru = function()
    local lru = require("resty.lrucache").new(10)
    local c = assert(mlc.new(uniq("clru"), ARENA, { lru = lru }))
    expect("L3", "x", nil, 3, c:get("k", nil, function() return "x" end))
    expect("L1", "x", nil, 1, c:get("k"))
    check(lru:get("k") ~= nil, "the entry is in the user's LRU")
    c:set("k", nil, "y")
    expect("set: L1", "y", nil, 1, c:get("k"))
    caches.c:get("unrelated", nil, function() return 1 end)
    c.lru:delete("k")
    expect("L2", "y", nil, 2, c:get("k"))

    -- a user LRU larger than lru_size (not given: 100, as mlcache ignores
    -- it with opts.lru) keeps its entries: resty.mlc's map from hash to
    -- key is bounded without emptying the user's LRU (it was emptied at
    -- every 4 x lru_size + 64 = 464 keys)
    local big = require("resty.lrucache").new(2000)
    local cb = assert(mlc.new(uniq("clrubig"), ARENA, { lru = big }))
    for i = 1, 1000 do
        cb:get("k" .. i, nil, function() return i end)
    end
    local l1hits = 0
    for i = 1, 1000 do
        local _, _, hit = cb:get("k" .. i)
        if hit == 1 then
            l1hits = l1hits + 1
        end
    end
    check(l1hits == 1000, "user LRU of 2000: " .. l1hits .. " of 1000 "
                          .. "keys read from it")
    -- and the map stays bounded: the keys the user's LRU dropped leave it
    local small = require("resty.lrucache").new(10)
    local cs = assert(mlc.new(uniq("clrusmall"), ARENA,
                              { lru = small, lru_size = 10 }))
    for i = 1, 2000 do
        cs:set("k" .. i, nil, i)
    end
    local nmap = 0
    for _ in pairs(cs.l1.byhash) do
        nmap = nmap + 1
    end
    check(nmap <= 4 * 10 + 64, "map from hash to key: " .. nmap
                               .. " entries for an LRU of 10")
end


-- every struct's size and field offsets, and every constant, as C sees
-- them through mlc.h (run.sh compiled the program that printed them)
T.ffi_layout = function()
    local ffi = require "ffi"
    local f = io.open(os.getenv("MLC_T_LAYOUT") or "", "r")
    if not check(f, "no layout file") then
        return
    end
    local n = 0
    for line in f:lines() do
        local w = {}
        for x in line:gmatch("%S+") do
            w[#w + 1] = x
        end
        local got
        if w[1] == "size" then
            got = ffi.sizeof("struct " .. w[2])
        elseif w[1] == "off" then
            got = ffi.offsetof("struct " .. w[2], w[3])
        elseif w[1] == "const" then
            got = mlc._const[w[2]]
        end
        check(got == tonumber(w[#w]),
              line .. ": resty.mlc has " .. fmt(got))
        n = n + 1
    end
    f:close()
    check(n > 100, "only " .. n .. " layout lines")
    local info = mlc.arena_info(ARENA)
    check(info.format >= 1 and info.namespaces >= 3,
          "arena_info: format " .. fmt(info.format) .. " namespaces "
          .. fmt(info.namespaces))
end


T.stats = function()
    local name = uniq("st")
    local c = assert(mlc.new(name, ARENA))
    c:get("a", nil, function() return 1 end)
    c:get("a")
    c:get("a")
    c.lru:delete("a")
    c:get("a")
    c:set("b", nil, 2)
    c:get("nope")
    local st = assert(c:stats())
    check(st.hits_l1 == nil and st.hits_l2 == 1 and st.hits_l3 == 1
          and st.misses == 1 and st.sets == 1,
          "stats: l1 " .. fmt(st.hits_l1) .. " l2 " .. fmt(st.hits_l2)
          .. " l3 " .. fmt(st.hits_l3) .. " misses " .. fmt(st.misses)
          .. " sets " .. fmt(st.sets))
    check(st.l1_items == 2, "l1_items " .. fmt(st.l1_items))
    local ns = assert(mlc.namespace_stats(ARENA, name))
    check(ns.sets == 1 and ns.items == 2 and ns.bytes > 0,
          "namespace_stats: sets " .. fmt(ns.sets) .. " items "
          .. fmt(ns.items) .. " bytes " .. fmt(ns.bytes))
end


-- L1 entries stay when a record announces the version they hold (this
-- worker's own sets and loads, and loads of the same version elsewhere),
-- and go when it announces a newer one
T.l1_versions = function()
    local name = uniq("lv")
    local c = assert(mlc.new(name, ARENA))
    local other = assert(mlc.new(name, ARENA))  -- another handle, same L1
    c:get("a", nil, function() return "A" end)
    c:set("b", nil, "B")
    other:get("a")                              -- its own poll
    expect("own load kept", "A", nil, 1, c:get("a"))
    expect("own set kept", "B", nil, 1, c:get("b"))
    local x = assert(mlc.new(uniq("lv-x"), ARENA))
    for i = 1, 1000 do                          -- other names' records
        x:set("k" .. i, nil, i)
    end
    expect("other names' records", "A", nil, 1, c:get("a"))
    other:set("a", nil, "A2")                    -- a newer version
    expect("newer version seen", "A2", nil, 1, c:get("a"))

    -- an instance of the same name made later shares the L1 and its
    -- reading of the log (through the first instance's handle), so it
    -- hits L1, and a change after it came is seen through it alone
    x = assert(mlc.new(name .. "-2", ARENA))
    x:get("k", nil, function() return 1 end)
    local x2 = assert(mlc.new(name .. "-2", ARENA))
    expect("later instance: L1", 1, nil, 1, x2:get("k"))
    local y = assert(mlc.new(name .. "-2", "anon-arena"))  -- same name,
    check(y.l1 ~= x2.l1, "another arena: another L1")      -- other arena
    caches.w:set("k", nil, "unrelated")          -- another name: kept
    expect("later instance: still L1", 1, nil, 1, x2:get("k"))
end


-- mlc.unlink() then mlc.arena() of the same name is another arena: an
-- instance made after it has an L1 of its own, which reads the new
-- arena's log, not the L1 of the instances of the old arena
T.recreate = function()
    local a = (ARENA .. "-" .. uniq("re")):gsub("[^%w-]", "-")
    assert(mlc.arena(a, { size = 8 * 1024 * 1024 }))
    local c1 = assert(mlc.new("ns", a))
    expect("old arena: L3", "old", nil, 3,
           c1:get("k", nil, function() return "old" end))
    assert(mlc.unlink(a))
    assert(mlc.arena(a, { size = 8 * 1024 * 1024 }))
    local c2 = assert(mlc.new("ns", a))
    check(c2.l1 ~= c1.l1, "the new arena's instance has another L1")
    expect("new arena: empty", nil, nil, -1, c2:get("k"))
    expect("new arena: L3", "new", nil, 3,
           c2:get("k", nil, function() return "new" end))
    expect("new arena: L1", "new", nil, 1, c2:get("k"))

    -- a change through another handle of the new arena (as another
    -- process's) reaches c2's L1 through the new arena's log
    assert(mlc.arena(a, { create = false }))
    local c3 = assert(mlc.new("ns", a))
    check(c3.l1 ~= c2.l1, "another arena handle: another L1")
    assert(c3:set("k", nil, "changed"))
    expect("new arena: the change seen", "changed", nil, 2, c2:get("k"))
    expect("old arena: its own L1", "old", nil, 1, c1:get("k"))
    mlc.unlink(a)
end


-- an arena that exists keeps its size: mlc.arena() with another size
-- attaches it as it is, and logs a warning that run.sh looks for (it said
-- nothing before)
T.arena_size = function()
    local a = ARENA .. "-size"
    mlc.unlink(a)
    assert(mlc.arena(a, { size = 8 * 1024 * 1024 }))
    assert(mlc.arena(a, { size = 16 * 1024 * 1024 }))
    check(mlc.arena_info(a).bytes == 8 * 1024 * 1024,
          "the arena keeps its 8 MiB")
    mlc.unlink(a)
end


-- single flight and lock timeouts between light threads of one worker
T.lock = function()
    local c = caches.c
    local k = uniq("lock")
    local calls = 0
    local slow = function()
        calls = calls + 1
        ngx.sleep(0.4)
        return "slow"
    end

    local t1 = ngx.thread.spawn(function() return c:get(k, nil, slow) end)
    ngx.sleep(0.05)
    local t2 = ngx.thread.spawn(function()
        return c:get(k, { resty_lock_opts = { timeout = 0.1 } }, slow)
    end)
    local t3 = ngx.thread.spawn(function() return c:get(k, nil, slow) end)
    local _, v1, e1, h1 = ngx.thread.wait(t1)
    local _, v2, e2, h2 = ngx.thread.wait(t2)
    local _, v3, e3, h3 = ngx.thread.wait(t3)
    expect("loader", "slow", nil, 3, v1, e1, h1)
    expect("lock timeout", nil, "could not acquire callback lock: timeout",
           nil, v2, e2, h2)
    expect("waiter gets the loader's value", "slow", nil, 2, v3, e3, h3)
    check(calls == 1, "callback ran " .. calls .. " times, expected 1")

    -- lock timeout with a stale value and resurrect_ttl: the stale value
    local k2 = uniq("lockstale")
    c:get(k2, { ttl = 0.1 }, function() return "old" end)
    ngx.sleep(0.2)
    local t4 = ngx.thread.spawn(function()
        return c:get(k2, { ttl = 0.1 }, function()
            ngx.sleep(0.4)
            return "new"
        end)
    end)
    ngx.sleep(0.05)
    expect("lock timeout serves stale", "old", nil, 4,
           c:get(k2, { resurrect_ttl = 1, resty_lock_opts = { timeout = 0.1 } },
                 slow))
    local _, v4, e4, h4 = ngx.thread.wait(t4)
    expect("loader after the stale answer", "new", nil, 3, v4, e4, h4)

    -- a value the loader does not cache (ttl < 0) reaches the waiters too
    local kb = uniq("lockbypass")
    local nb = 0
    local bypass = function()
        nb = nb + 1
        ngx.sleep(0.2)
        return "nc" .. nb, nil, -1
    end
    local tb = ngx.thread.spawn(function() return c:get(kb, nil, bypass) end)
    ngx.sleep(0.05)
    local vb, eb, hb = c:get(kb, nil, bypass)
    local _, vb1, eb1, hb1 = ngx.thread.wait(tb)
    expect("bypass loader", "nc1", nil, 3, vb1, eb1, hb1)
    expect("bypass waiter gets the loader's value", "nc1", nil, 2, vb, eb, hb)
    expect("bypass: not cached", "nc2", nil, 3, c:get(kb, nil, bypass))

    -- the loader's error is shared with the waiters (no second run)
    local k3 = uniq("lockerr")
    local n3 = 0
    local failing = function()
        n3 = n3 + 1
        ngx.sleep(0.2)
        return nil, "shared failure"
    end
    local t5 = ngx.thread.spawn(function() return c:get(k3, nil, failing) end)
    ngx.sleep(0.05)
    local v6, e6, h6 = c:get(k3, nil, failing)
    local _, v5, e5, h5 = ngx.thread.wait(t5)
    expect("loader error", nil, "shared failure", nil, v5, e5, h5)
    expect("waiter gets the error", nil, "shared failure", nil, v6, e6, h6)
    check(n3 == 1, "failing callback ran " .. n3 .. " times, expected 1")

    -- resty_lock_opts.exptime = 0: a lock that never expires, as
    -- lua-resty-lock's (shdict add with exptime 0), not a 1 ms lease that
    -- every waiter takes over
    local c0 = assert(mlc.new("exptime0", ARENA,
                              { resty_lock_opts = { exptime = 0 } }))
    local k4 = uniq("exptime0")
    local n4 = 0
    local slow4 = function()
        n4 = n4 + 1
        ngx.sleep(0.3)
        return "once"
    end
    local t6 = ngx.thread.spawn(function() return c0:get(k4, nil, slow4) end)
    ngx.sleep(0.05)
    local v7, e7, h7 = c0:get(k4, nil, slow4)
    local _, v6b, e6b, h6b = ngx.thread.wait(t6)
    expect("exptime 0: loader", "once", nil, 3, v6b, e6b, h6b)
    expect("exptime 0: waiter gets the loader's value", "once", nil, 2,
           v7, e7, h7)
    check(n4 == 1, "exptime 0: callback ran " .. n4 .. " times, expected 1")

    -- a waiter's sleeps never go under 1 ms, whatever ratio and max_step
    -- say (as in lua-resty-lock): ngx.sleep() of less takes 0 ms, and a
    -- waiter that only ever slept 0 ms spun in the event loop, which ran
    -- no timer (not the loader's ngx.sleep either): the worker hung
    for _, lo in ipairs { { ratio = 0 }, { ratio = 0.5 },
                          { max_step = 0.0001 } } do
        local what = next(lo) .. " " .. lo[next(lo)]
        local k5 = uniq("substep")
        local t7 = ngx.thread.spawn(function()
            return c:get(k5, nil, function()
                ngx.sleep(0.3)
                return "r"
            end)
        end)
        ngx.sleep(0.02)
        local w0 = c:stats().lock_waits
        expect(what .. ": waiter", "r", nil, 2,
               c:get(k5, { resty_lock_opts = lo }, slow))
        local polls = c:stats().lock_waits - w0
        ngx.thread.wait(t7)
        check(polls < 1000, what .. ": the waiter polled " .. polls
                            .. " times")
    end
end


T.anon = function()
    local c = caches.a
    local k = uniq("anon")
    expect("anonymous arena: L3", "x", nil, 3,
           c:get(k, nil, function() return "x" end))
    expect("anonymous arena: L1", "x", nil, 1, c:get(k))
    c.lru:delete(k)
    expect("anonymous arena: L2", "x", nil, 2, c:get(k))
end


T.lru_size = function()
    local c = caches.small
    local ks = { uniq("l1"), uniq("l2"), uniq("l3") }
    for _, k in ipairs(ks) do
        c:get(k, nil, function() return k end)
    end
    expect("evicted from L1 (lru_size 2): L2", ks[1], nil, 2, c:get(ks[1]))
    expect("still in L1", ks[3], nil, 1, c:get(ks[3]))
end


T.oversize = function()
    local c = caches.c
    local k = uniq("big")
    local big = string.rep("x", 2 * 1024 * 1024)      -- over one 1 MiB page
    local v, err, hit = c:get(k, nil, function() return big end)
    check(v == big and err == nil and hit == 3,
          "oversize value returned: " .. fmt(err) .. " " .. fmt(hit))
    local _, _, hit2 = c:get(k, nil, function() return "reloaded" end)
    check(hit2 == 1, "oversize value kept in this worker's L1: " .. fmt(hit2))
    check(c:peek(k) == nil, "oversize value not in L2")
    local ok, serr = c:set(uniq("bigset"), nil, big)
    check(ok == nil and serr and serr:find("could not write to mlc arena",
                                           1, true),
          "set of an oversize value: " .. fmt(serr))
end


-- a request killed while its callback runs: the flight is given up when
-- its ticket is collected, not after the 30 s lease
T.killed = function()
    local c = caches.c
    local k = uniq("killed")
    local t = ngx.thread.spawn(function()
        return c:get(k, nil, function()
            ngx.sleep(10)
            return "never"
        end)
    end)
    ngx.sleep(0.05)
    ngx.thread.kill(t)
    t = nil                                             -- luacheck: ignore
    collectgarbage("collect")
    collectgarbage("collect")
    local t0 = ngx.now()
    expect("next get loads at once", "fresh", nil, 3,
           c:get(k, { resty_lock_opts = { timeout = 1 } },
                 function() return "fresh" end))
    check(ngx.now() - t0 < 0.5, "waited " .. (ngx.now() - t0) .. " s")
end


-- get() in a timer (can yield)
T.timer = function()
    local c = caches.c
    local k = uniq("timer")
    local res
    local ok, err = ngx.timer.at(0, function()
        res = { c:get(k, nil, function()
            ngx.sleep(0.01)
            return "from timer"
        end) }
    end)
    check(ok, "timer: " .. fmt(err))
    for _ = 1, 100 do
        if res then
            break
        end
        ngx.sleep(0.01)
    end
    check(res and res[1] == "from timer" and res[3] == 3,
          "get in a timer: " .. fmt(res and res[1]))
    expect("then from L1", "from timer", nil, 1, c:get(k))
end


-- set_by_lua* cannot yield: a waiter gives up at once (lock timeout), a
-- loader runs the callback; never blocks the worker
-- server_rewrite_by_lua (a phase that can yield, run for every request of
-- the server): with ?srw=KEY, get KEY there and answer at once
function _M.in_server_rewrite()
    local key = ngx.var.arg_srw
    if not key then
        return
    end
    local c = caches.c
    local t0 = ngx.now()
    local v, err, hit = c:get(key, nil, function() return "srw" end)
    ngx.update_time()
    ngx.say(string.format("p=%s v=%s e=%s h=%s t=%.3f", ngx.get_phase(),
                          tostring(v), tostring(err), tostring(hit),
                          ngx.now() - t0))
    return ngx.exit(200)
end


function _M.in_set()
    local a = ngx.req.get_uri_args()
    local c = caches.c
    local t0 = ngx.now()
    local v, err, hit = c:get(a.key, nil, function() return "set_by_lua" end)
    ngx.update_time()
    return string.format("v=%s e=%s h=%s t=%.3f", tostring(v), tostring(err),
                         tostring(hit), ngx.now() - t0)
end


-- The L1 index of a hash is the same number in interpreted and compiled
-- code (LuaJIT's JIT rounds tonumber() of a uint64_t >= 2^63 differently
-- from its interpreter: 2^63 + 1025 gives 2^63 + 2048 in one, 2^63 in the
-- other).
T.hash_index = function()
    local ffi = require "ffi"
    local hs = ffi.new("uint64_t[4]", 0x8000000000000401ULL,
                       0xFFFFFFFFFFFFFFFFULL, 0x8000000000000C01ULL, 12345)
    local f = function(i) return mlc._hash_index(hs[i]) end
    for i = 0, 3 do
        jit.off(f)
        local interp = f(i)
        jit.on(f)
        local compiled
        for _ = 1, 300 do
            compiled = f(i)
        end
        check(interp == compiled and interp < 2^53,
              string.format("hash %s: interpreted %.0f, compiled %.0f",
                            tostring(hs[i]), interp, compiled))
    end
end


function _M.run_test()
    local name = ngx.var.arg_test
    local f = T[name]
    if not f then
        ngx.status = 404
        ngx.say("not ok: no test ", name)
        return
    end
    fails = {}
    local ok, err = xpcall(f, debug.traceback)
    if not ok then
        fails[#fails + 1] = "threw: " .. tostring(err)
    end
    if #fails == 0 then
        ngx.say("ok")
    else
        ngx.say("not ok")
        for _, m in ipairs(fails) do
            ngx.say("    ", m)
        end
    end
end


-- ---------------------------------------------------------------- --
-- Cross-worker operations

function _M.xw()
    local a = ngx.var.args and ngx.req.get_uri_args() or {}
    local c = caches[a.ns or "c"]
    local key = a.key
    local v, err, hit
    local op = a.op

    if op == "get" then
        local sleep = tonumber(a.sleep)
        v, err, hit = c:get(key, nil, function()
            counters:incr(key, 1, 0)
            if sleep then
                ngx.sleep(sleep)
            end
            if a.fail then
                return nil, a.fail
            end
            return a.val
        end)

    elseif op == "set" then
        v, err = c:set(key, nil, a.val)

    elseif op == "delete" then
        v, err = c:delete(key)

    elseif op == "purge" then
        v, err = c:purge()
    end

    ngx.say("w=", ngx.worker.id(), " v=", tostring(v), " h=", tostring(hit),
            " e=", tostring(err))
end


-- /l1fill?n=N&run=R: this worker fills its L1 with keys k1..kN (the first
-- worker to get a key loads it, the others read it from L2 or wait for the
-- load), waits until every worker that took part has filled, then reads
-- them all and counts the L1 hits.
local filling = {}

function _M.l1fill()
    local n = tonumber(ngx.var.arg_n)
    local run = ngx.var.arg_run
    local w = ngx.worker.id()
    if filling[run] then
        ngx.say("dup w=", w)
        return
    end
    filling[run] = true
    local c = assert(mlc.new("fill-" .. run, ARENA .. "-big",
                             { lru_size = n }))
    counters:incr("fillers:" .. run, 1, 0)
    local cb = function(i)
        return "value of " .. i
    end
    local keys = {}
    for i = 1, n do
        keys[i] = "k" .. i
        c:get(keys[i], nil, cb, i)
    end
    counters:incr("filled:" .. run, 1, 0)
    local t0 = ngx.now()
    while ngx.now() - t0 < 60 do
        local f = counters:get("fillers:" .. run)
        if counters:get("filled:" .. run) == f and f >= 2
           and ngx.now() - t0 > 0.2
        then
            break
        end
        c:update()          -- keep up with the log meanwhile
        ngx.sleep(0.002)
    end
    local hits, wrong = 0, 0
    for i = 1, n do
        local v, _, hit = c:get(keys[i], nil, cb, i)
        if hit == 1 then
            hits = hits + 1
        end
        if v ~= "value of " .. i then
            wrong = wrong + 1
        end
    end
    local st = c:stats()
    ngx.say("filled w=", w, " l1_hits=", hits, " wrong=", wrong,
            " fillers=", counters:get("fillers:" .. run),
            " (l2 ", st.hits_l2, " l3 ", st.hits_l3, " dup ",
            st.duplicate_loads, " fenced ", st.fenced_writes, " overruns ",
            st.log_overruns, " stuck ", st.log_stuck, " waits ",
            st.lock_waits, ")")
end


-- MLC_T_BENCH=1 lua/t/run.sh: ns per operation of resty.mlc's paths beside
-- resty.lrucache and ngx.shared.DICT, in this one worker, for 64 and
-- 100,000 keys.  Times are this worker's CPU time (os.clock: a shared
-- machine's other load does not count), the best of 3 runs; the L1 pair
-- is timed interleaved, twice.
local function bench_time(f, count)
    local t0 = os.clock()
    f(count)
    return (os.clock() - t0) * 1e9 / count
end


local function best(f, count)
    local t = bench_time(f, count)
    for _ = 2, 3 do
        t = math.min(t, bench_time(f, count))
    end
    return t
end


-- A loop of its own (a fresh function prototype, so a trace of its own)
-- running @call m times with c, ks, nk, v bound: each case is compiled for
-- its own value types, as code that uses one cache for one kind of value.
local function make_loop(call, c, ks, nk, v)
    return assert(loadstring("local c, ks, nk, v = ... return function(m) "
                             .. "for i = 1, m do " .. call .. " end end"))(
                             c, ks, nk, v)
end


local STR16 = "0123456789abcdef"
local function tab_value(i)
    return { id = i, name = "user", tags = { "a", "b" }, ok = true }
end


function _M.bench()
    local lrucache = require "resty.lrucache"
    local dict = ngx.shared.bench
    local big = ARENA .. "-big"
    local run = uniq("b"):gsub("[^%w]", "")
    jit.flush()                 -- what the tests left: start over
    ngx.say("path                                  keys   resty.mlc ns   "
            .. "floor                               floor ns   ratio")
    local function line(path, nkeys, ns, floor_name, fns)
        ngx.say(string.format("%-36s %6d %12.1f   %-34s %10.1f   %5.2f",
                              path, nkeys, ns, floor_name, fns, ns / fns))
    end

    for _, nkeys in ipairs { 64, 100000 } do
        local keys = {}
        for i = 1, nkeys do
            keys[i] = "bench:" .. run .. ":" .. i
        end
        local iters = 2000000
        local iters_l2 = nkeys == 64 and 400000 or 200000
        -- the paths that allocate (a decoded table each): runs long enough
        -- to span several GC cycles of this heap, so that each pays its
        -- share of the GC instead of the best of 3 being the run that
        -- happened to have no cycle in it
        local iters_gc = nkeys == 64 and 400000 or 1000000

        -- floors
        local lru = lrucache.new(nkeys)
        for i = 1, nkeys do
            lru:set(keys[i], STR16, 30)
        end
        local lru_get = make_loop("c:get(ks[i % nk + 1])", lru, keys, nkeys)
        local lru_set = make_loop("c:set(ks[i % nk + 1], v, 30)", lru, keys,
                                  nkeys, STR16)
        dict:flush_all()
        for i = 1, nkeys do
            dict:set(keys[i], STR16)
        end
        local dict_get = make_loop("c:get(ks[i % nk + 1])", dict, keys, nkeys)
        local dict_set = make_loop("c:set(ks[i % nk + 1], v)", dict, keys,
                                   nkeys, STR16)

        -- resty.mlc: L1 of nkeys, and L1 of 1 (every get an L2 hit)
        local c1 = assert(mlc.new("b1-" .. nkeys .. run, big,
                                  { lru_size = nkeys }))
        local ct = assert(mlc.new("bt-" .. nkeys .. run, big,
                                  { lru_size = nkeys }))
        local c2 = assert(mlc.new("b2-" .. nkeys .. run, big,
                                  { lru_size = 1 }))
        local c2t = assert(mlc.new("b2t-" .. nkeys .. run, big,
                                   { lru_size = 1 }))
        for i = 1, nkeys do
            c1:set(keys[i], nil, STR16)
            ct:set(keys[i], nil, tab_value(i))
            c2:set(keys[i], nil, STR16)
            c2t:set(keys[i], nil, tab_value(i))
        end
        local getter = function(c)
            return make_loop("c:get(ks[i % nk + 1])", c, keys, nkeys)
        end

        -- the L1s are full now: a first pass (a loop of its own: traced on
        -- the L2 path) reads what the log dropped
        getter(c1)(nkeys)
        getter(ct)(nkeys)
        local g1 = getter(c1)
        local a1 = best(lru_get, iters)
        local m1 = best(g1, iters)
        local a2 = best(lru_get, iters)
        local m2 = best(g1, iters)
        local lru_ns = math.min(a1, a2)
        line("L1 hit, 16 B string", nkeys, math.min(m1, m2),
             "resty.lrucache:get", lru_ns)
        line("L1 hit, table", nkeys, best(getter(ct), iters),
             "resty.lrucache:get", lru_ns)

        local dg = best(dict_get, iters_l2)
        local ls = best(lru_set, iters_l2)
        local l2s = best(getter(c2), iters_gc)
        line("L2 hit, 16 B string (lru_size 1)", nkeys, l2s,
             "DICT:get + lrucache:set", dg + ls)
        local l2t = best(getter(c2t), iters_gc)
        line("L2 hit, table (lru_size 1)", nkeys, l2t,
             "DICT:get + lrucache:set", dg + ls)
        do
            -- mlc's own lookup, without resty.mlc: what the C library costs
            local ffi = require "ffi"
            local C = ffi.load(os.getenv("MLC_LIB"))
            local v = ffi.new("struct mlc_value[1]")
            local peek = function(m)
                local h, ks, nk = c2.h, keys, nkeys
                for i = 1, m do
                    local k = ks[i % nk + 1]
                    C.mlc_peek(h, k, #k, 0, v)
                    C.mlc_value_release(v)
                end
            end
            line("(C) mlc_peek + mlc_value_release", nkeys,
                 best(peek, iters_l2), "ngx.shared.DICT:get", dg)
        end

        -- sets
        local ds = best(dict_set, iters_l2 / 2)
        local setter = function(c, v)
            return make_loop("c:set(ks[i % nk + 1], nil, v)", c, keys, nkeys,
                             v)
        end
        local sets = best(setter(c2, STR16), iters_l2 / 2)
        line("set, 16 B string", nkeys, sets, "DICT:set", ds)
        local sett = best(setter(c2t, tab_value(1)), iters_l2 / 2)
        line("set, table", nkeys, sett, "DICT:set", ds)

        -- miss -> callback -> store: every get a key never seen
        local nmiss = 30000
        local seqm = 0
        local misser = function(c, v)
            local cb = function() return v end
            return function(m)
                local f = make_loop("c:get(ks .. (nk + i), nil, v)", c,
                                    "miss:" .. run .. ":" .. nkeys .. ":",
                                    seqm, cb)
                seqm = seqm + m
                f(m)
            end
        end
        local cm = assert(mlc.new("bm-" .. nkeys .. run, big,
                                  { lru_size = nkeys }))
        -- in turn (each run adds keys to the arena and the L1, and a
        -- fuller arena costs every later store more): best of 5 each (a
        -- miss allocates a key, a flight ticket with a finalizer, ...: its
        -- runs spread more than the others)
        local ev0 = mlc.arena_info(big).evictions
        local ms, mt = misser(cm, STR16), misser(cm, tab_value(7))
        local misss, misst = math.huge, math.huge
        for _ = 1, 5 do
            misss = math.min(misss, bench_time(ms, nmiss))
            misst = math.min(misst, bench_time(mt, nmiss))
        end
        line("miss -> callback -> store, string", nkeys, misss,
             "DICT:get + DICT:set", dg + ds)
        line("miss -> callback -> store, table", nkeys, misst,
             "DICT:get + DICT:set", dg + ds)
        local ev = mlc.arena_info(big).evictions - ev0
        if ev > 0 then
            ngx.say(string.format("  (mlc evicted %d entries for room during "
                                  .. "the misses)", ev))
        end
        line("(floor) resty.lrucache:get", nkeys, lru_ns,
             "ngx.shared.DICT:get", dg)
        do
            -- The codec's own cost: resty.mlc's decode and encode of the
            -- small table's bytes (tag, expiry, string.buffer), alone, in
            -- this heap and this run.  The decode is the L2 hit's (in place,
            -- from memory; two buffers in turn, so that, as on an L2 hit, the
            -- pointer it passes to string.buffer is a new cdata each time);
            -- it allocates the table, and its time includes the GC's share
            -- of that, which grows with what the heap holds.  The encode
            -- (set, and the store after a callback) writes into a reused
            -- buffer and allocates nothing.
            local ffi = require "ffi"
            local decode_at, encode_at = mlc._decode_at, mlc._encode_at
            local p, n = encode_at(tab_value(1), 0)
            local bytes = {}
            for j = 1, 2 do
                bytes[j] = ffi.new("uint8_t[?]", n)
                ffi.copy(bytes[j], p, n)
            end
            local dec = make_loop("v(ks[i % 2 + 1], nk)", nil, bytes, n,
                                  decode_at)
            local encf = make_loop("v(c, 0)", tab_value(1), nil, nil,
                                   encode_at)
            local cdec = best(dec, iters_gc)
            local cenc = best(encf, iters_l2)
            line("(codec) decode in place, table", nkeys, cdec, "DICT:get",
                 dg)
            line("(codec) encode, table", nkeys, cenc, "DICT:get", dg)
            -- issue 15's target for tables: within 1.2x of the string's
            -- time plus the codec's
            ngx.say(string.format("target (<= 1.20), %d keys: L2 hit table "
                                  .. "/ (string + decode) %.2f; set table / "
                                  .. "(string + encode) %.2f; miss table / "
                                  .. "(string + encode) %.2f", nkeys,
                                  l2t / (l2s + cdec), sett / (sets + cenc),
                                  misst / (misss + cenc)))
        end
        for _, c in ipairs { c1, ct, c2, c2t, cm } do
            c:purge()
        end
        collectgarbage()
    end
    ngx.say("lua-resty-mlcache: not installed here (no Debian package); "
            .. "compare with the floors")
end


function _M.count()
    ngx.say(counters:get(ngx.var.arg_key) or 0)
end


return _M
