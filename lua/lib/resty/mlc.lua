-- resty.mlc: lua-resty-mlcache's API on top of mlc (libmlc), through the
-- LuaJIT FFI.
--
--   L1  a resty.lrucache per worker and per instance name, holding Lua
--       objects (after the l1_serializer).  It stays coherent through mlc's
--       invalidation log: every get()/peek() applies what changed since the
--       last call (one FFI call when nothing did).
--   L2  an mlc arena (shared memory, see mlc.h), named by `shm`.
--   L3  the callback, run by one worker at a time per key (mlc's single
--       flight, driven from Lua so that the callback may yield).
--
-- See lua/README.md for the option mapping and the differences from
-- lua-resty-mlcache.

local ffi      = require "ffi"
local bit      = require "bit"
local lrucache = require "resty.lrucache"

local ngx          = ngx
local now          = ngx.now
local sleep        = ngx.sleep
local get_phase    = ngx.get_phase
local ngx_log      = ngx.log
local WARN         = ngx.WARN
local ERR          = ngx.ERR
local thread_spawn = ngx.thread.spawn
local thread_wait  = ngx.thread.wait

local band     = bit.band
local bor      = bit.bor
local rshift   = bit.rshift
local type     = type
local next     = next
local error    = error
local pcall    = pcall
local xpcall   = xpcall
local tostring = tostring
local tonumber = tonumber
local traceback = debug.traceback
local setmetatable = setmetatable
local char     = string.char
local sub      = string.sub
local byte     = string.byte
local floor    = math.floor
local ceil     = math.ceil
local min      = math.min
local concat   = table.concat

local ffi_new    = ffi.new
local ffi_string = ffi.string
local ffi_cast   = ffi.cast
local ffi_copy   = ffi.copy
local ffi_sizeof = ffi.sizeof
local ffi_gc     = ffi.gc


-- ------------------------------------------------------------------ --
-- The parts of mlc.h used here (v0.1 ABI; every options struct carries
-- its size, set below from ffi.sizeof).

if not pcall(ffi.typeof, "struct mlc_value") then
    ffi.cdef [[
struct mlc_arena;
struct mlc_cache;
struct mlc_codec;

struct mlc_arena_options {
    size_t   size;
    uint32_t flags;
    uint32_t mode;
    uint64_t bytes;
    uint32_t max_items;
    uint32_t page_size;
    uint32_t log_cells;
    uint32_t flight_slots;
    uint32_t max_namespaces;
    uint32_t neg_quota_pct;
};
int mlc_arena_open(struct mlc_arena **arenap, const char *name,
                   const struct mlc_arena_options *opts);
int mlc_arena_close(struct mlc_arena *arena);
int mlc_arena_unlink(const char *name, uint32_t flags);

struct mlc_arena_info {
    size_t   size;
    uint64_t bytes, max_items, items, neg_items;
    uint64_t page_size, pages, pages_free;
    uint64_t value_max, sets, evictions, expired_reclaimed;
    uint64_t index_evictions, page_moves, orphans_reclaimed, repairs;
    uint64_t write_failures, log_head;
    uint32_t namespaces;
    uint32_t format;
};
int mlc_arena_info(struct mlc_arena *arena, struct mlc_arena_info *info);

struct mlc_cache_options {
    size_t   size;
    uint32_t flags;
    uint32_t lru_size;
    uint64_t lru_bytes;
    int64_t  ttl_ms;
    int64_t  neg_ttl_ms;
    int64_t  resurrect_ttl_ms;
    int64_t  err_ttl_ms;
    uint32_t lock_timeout_ms;
    uint32_t lock_lease_ms;
    uint32_t lock_policy;
    uint32_t update_budget;
    const struct mlc_codec *codec;
};
int mlc_cache_open(struct mlc_cache **cachep, struct mlc_arena *arena,
                   const char *ns, const struct mlc_cache_options *opts);
int mlc_cache_close(struct mlc_cache *cache);

struct mlc_value {
    const void *data;
    size_t      len;
    void       *obj;
    uint32_t    flags;
    uint32_t    level;
    int64_t     ttl_ms;
    uint64_t    version;
    void       *ref;
};
void mlc_value_release(struct mlc_value *value);

struct mlc_load {
    const void *data;
    size_t      len;
    void      (*release)(void *data);
    int64_t     ttl_ms;
    uint32_t    flags;
    char        errmsg[160];
};

struct mlc_call_options {
    size_t   size;
    uint32_t flags;
    uint32_t lock_policy;
    int64_t  ttl_ms;
    int64_t  neg_ttl_ms;
    int64_t  resurrect_ttl_ms;
    uint32_t lock_timeout_ms;
    uint32_t pad0;
};

int mlc_peek(struct mlc_cache *cache, const void *key, size_t key_len,
             uint32_t flags, struct mlc_value *value);
int mlc_set(struct mlc_cache *cache, const void *key, size_t key_len,
            const void *data, size_t len,
            const struct mlc_call_options *opts);
int mlc_delete(struct mlc_cache *cache, const void *key, size_t key_len);
int mlc_purge(struct mlc_cache *cache);

struct mlc_flight {
    uint32_t role;
    uint32_t fl_private0;
    uint64_t fl_private[7];
};
int mlc_flight_acquire(struct mlc_cache *cache, const void *key,
                       size_t key_len, const struct mlc_call_options *opts,
                       struct mlc_flight *flight);
int mlc_flight_wait(struct mlc_cache *cache, struct mlc_flight *flight,
                    uint32_t timeout_ms, struct mlc_value *value);
int mlc_flight_publish(struct mlc_cache *cache, struct mlc_flight *flight,
                       int result, struct mlc_load *load,
                       struct mlc_value *value);
int mlc_flight_abandon(struct mlc_cache *cache, struct mlc_flight *flight);

uint64_t mlc_key_hash(struct mlc_cache *cache, const void *key,
                      size_t key_len);
int mlc_update_ex(struct mlc_cache *cache, uint64_t *hashes, size_t cap,
                  size_t *n, uint32_t *flags);

const char *mlc_strerror(int code);
const char *mlc_last_error(struct mlc_cache *cache);
const char *mlc_version_string(void);
]]
end

if not pcall(function() return ffi.C.memcmp end) then
    ffi.cdef "int memcmp(const void *s1, const void *s2, size_t n);"
end


-- enum values of mlc.h
local MLC_ARENA_CREATE  = 1
local MLC_ARENA_EXCL    = 2
local MLC_ARENA_FILE    = 4
local MLC_ARENA_ANON    = 8
local MLC_ARENA_FOREIGN = 16

local MLC_CACHE_MANUAL_UPDATE = 1
local MLC_CACHE_NO_L1         = 2

local MLC_NEGATIVE       = 1
local MLC_STALE          = 2
local MLC_NO_EXPIRY      = 4
local MLC_NOT_CACHED     = 8
local MLC_L2_WRITE_FAILED = 16

local MLC_CALL_STALE_OK = 1
local MLC_CALL_NEGATIVE = 4

local MLC_LOAD_VALUE    = 0
local MLC_LOAD_NOTFOUND = 1
local MLC_LOAD_NO_CACHE = 1

local MLC_FLIGHT_NONE   = 0
local MLC_FLIGHT_LOADER = 1
local MLC_FLIGHT_WAITER = 2

local MLC_UPDATE_ALL = 1
local MLC_TTL_NEVER  = -1
local MLC_ELOADER    = -4203

-- Linux errno values mlc returns negated
local ENOENT    = -2
local EIO       = -5
local EAGAIN    = -11
local ENOSPC    = -28

local HASH_CAP = 128          -- hashes taken per mlc_update_ex() call

-- mlc_update_ex()'s count is a size_t: read its low 32 bits as a number
-- (no 64-bit cdata boxed on the interpreter's fast path)
local N32_OFF = (ffi.sizeof("size_t") == 8 and ffi.abi("be")) and 1 or 0

local u8p = ffi.typeof("const uint8_t *")
local value_t = ffi.typeof("struct mlc_value[1]")
local flight_t = ffi.typeof("struct mlc_flight")
local load_t = ffi.typeof("struct mlc_load")
local callopts_t = ffi.typeof("struct mlc_call_options")
local dbl = ffi_new("double[1]")


-- ------------------------------------------------------------------ --
-- Loading libmlc: opts.lib of configure(), else $MLC_LIB (declare it with
-- `env MLC_LIB;` in nginx.conf), else the system's libmlc.

local C
local lib_path

local function lib()
    if C then
        return C
    end

    local path = lib_path or os.getenv("MLC_LIB")
    if path and path ~= "" then
        C = ffi.load(path)

    else
        local ok, l = pcall(ffi.load, "mlc")
        if not ok then
            ok, l = pcall(ffi.load, "libmlc.so.0")
            if not ok then
                error("could not load libmlc (set MLC_LIB or call "
                      .. "resty.mlc.configure{ lib = path }): " .. l, 3)
            end
        end
        C = l
    end

    return C
end


local function strerror(rc)
    return ffi_string(C.mlc_strerror(rc))
end


-- ------------------------------------------------------------------ --
-- Value encoding in L2: one tag byte, then the payload.
--
--   'S' string      payload: the bytes
--   'N' number      payload: 8 bytes, the native double
--   'T' / 'F'       true / false, no payload
--   'L' table       payload: the table encoding below
--   'Z' nil         only for a resurrected negative entry (a normal cached
--                   nil is an mlc negative entry, with no bytes at all)
--
-- A lower-case tag ('s', 'n', 't', 'f', 'l', 'z') marks a value that was
-- resurrected (served stale): reads from L2 report hit level 4.
--
-- Tables (values and keys nested inside 'L'):
--   's' u32le length, bytes | 'n' 8-byte double | 't' | 'f'
--   '{' (key value)* '}'
-- Keys: strings, numbers, booleans.  Values: those and tables, nested at
-- most MAX_DEPTH deep (a cycle is reported as too deep).  Metatables are not
-- kept; a table referenced twice is stored twice.

local TAG_STR, TAG_NUM, TAG_TRUE, TAG_FALSE, TAG_TAB, TAG_NIL =
      83, 78, 84, 70, 76, 90                    -- S N T F L Z
local STALE_BIT = 32                            -- upper -> lower case
local MAX_DEPTH = 100

local S_TRUE, S_FALSE = "T", "F"

local function u32le(n)
    return char(band(n, 0xff), band(rshift(n, 8), 0xff),
                band(rshift(n, 16), 0xff), band(rshift(n, 24), 0xff))
end


local function enc_any(v, buf, n, depth)
    local t = type(v)
    if t == "string" then
        buf[n + 1] = "s"
        buf[n + 2] = u32le(#v)
        buf[n + 3] = v
        return n + 3

    elseif t == "number" then
        dbl[0] = v
        buf[n + 1] = "n"
        buf[n + 2] = ffi_string(dbl, 8)
        return n + 2

    elseif t == "boolean" then
        buf[n + 1] = v and "t" or "f"
        return n + 1

    elseif t == "table" then
        if depth >= MAX_DEPTH then
            error("table nested more than " .. MAX_DEPTH
                  .. " levels deep (or cyclic)", 0)
        end

        buf[n + 1] = "{"
        n = n + 1
        for k, x in next, v do
            local kt = type(k)
            if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
                error("cannot encode a table key of type " .. kt, 0)
            end
            n = enc_any(k, buf, n, depth + 1)
            n = enc_any(x, buf, n, depth + 1)
        end
        buf[n + 1] = "}"
        return n + 1
    end

    error("cannot encode a value of type " .. t, 0)
end


local function enc_table(t)
    local buf = { "L" }
    local ok, err = pcall(enc_any, t, buf, 1, 0)
    if not ok then
        return nil, err
    end
    return concat(buf)
end


-- Decoding works on the bytes in place (p: const uint8_t *, len).

local function dec_any(p, len, pos, depth)
    if pos >= len then
        error("truncated table encoding", 0)
    end

    local c = p[pos]
    if c == 115 then                -- 's'
        if pos + 5 > len then
            error("truncated table encoding", 0)
        end
        local n = p[pos + 1] + p[pos + 2] * 0x100 + p[pos + 3] * 0x10000
                  + p[pos + 4] * 0x1000000
        if pos + 5 + n > len then
            error("truncated table encoding", 0)
        end
        return ffi_string(p + pos + 5, n), pos + 5 + n

    elseif c == 110 then            -- 'n'
        if pos + 9 > len then
            error("truncated table encoding", 0)
        end
        ffi_copy(dbl, p + pos + 1, 8)
        return dbl[0], pos + 9

    elseif c == 116 then            -- 't'
        return true, pos + 1

    elseif c == 102 then            -- 'f'
        return false, pos + 1

    elseif c == 123 then            -- '{'
        if depth >= MAX_DEPTH then
            error("table nested too deep", 0)
        end
        local t = {}
        pos = pos + 1
        while true do
            if pos >= len then
                error("truncated table encoding", 0)
            end
            if p[pos] == 125 then   -- '}'
                return t, pos + 1
            end
            local k, x
            k, pos = dec_any(p, len, pos, depth + 1)
            x, pos = dec_any(p, len, pos, depth + 1)
            if k == nil or k ~= k then
                error("invalid table key", 0)
            end
            t[k] = x
        end
    end

    error("invalid byte " .. c .. " in table encoding", 0)
end


-- Encode a Lua value for L2.  Returns bytes, or nil and an error; throws
-- for a type that cannot be cached at all (as lua-resty-mlcache does).
local function encode(v)
    local t = type(v)
    if t == "string" then
        return "S" .. v

    elseif t == "number" then
        dbl[0] = v
        return "N" .. ffi_string(dbl, 8)

    elseif t == "boolean" then
        return v and S_TRUE or S_FALSE

    elseif t == "table" then
        local s, err = enc_table(v)
        if not s then
            return nil, "could not serialize value for L2 insertion: "
                        .. "could not encode table value: " .. err
        end
        return s
    end

    return nil, nil, "cannot cache value of type " .. t
end


-- Decode the bytes of an mlc value.  Returns value, resurrected, err.
local function decode(data, len)
    if len < 1 then
        return nil, false, "empty value (not written by resty.mlc)"
    end

    local p = ffi_cast(u8p, data)
    local tag = p[0]
    local stale = false
    if tag >= 97 then
        stale = true
        tag = tag - STALE_BIT
    end

    if tag == TAG_STR then
        return ffi_string(p + 1, len - 1), stale

    elseif tag == TAG_NUM then
        if len ~= 9 then
            return nil, stale, "bad number encoding"
        end
        ffi_copy(dbl, p + 1, 8)
        return dbl[0], stale

    elseif tag == TAG_TRUE then
        return true, stale

    elseif tag == TAG_FALSE then
        return false, stale

    elseif tag == TAG_TAB then
        local ok, t, pos = pcall(dec_any, p, len, 1, 0)
        if not ok then
            return nil, stale, "could not decode table value: " .. t
        end
        if pos ~= len then
            return nil, stale, "could not decode table value: trailing bytes"
        end
        return t, stale

    elseif tag == TAG_NIL then
        return nil, stale
    end

    return nil, false, "unknown type tag " .. p[0]
                       .. " (not written by resty.mlc)"
end


-- The same bytes, marked resurrected (lower-case tag).
local function mark_stale(bytes)
    local tag = byte(bytes, 1)
    if tag >= 97 then
        return bytes
    end
    return char(tag + STALE_BIT) .. sub(bytes, 2)
end


-- seconds (>= 0, 0 = never) -> mlc ms (>= 1, or MLC_TTL_NEVER)
local function ttl_ms(s)
    if s == 0 or s >= 2^52 then
        return MLC_TTL_NEVER
    end
    local ms = floor(s * 1000 + 0.5)
    if ms < 1 then
        ms = 1
    end
    return ms
end


-- ------------------------------------------------------------------ --
-- Arenas, by name, for this Lua VM (inherited by workers when opened in
-- init_by_lua*).

local ARENAS = {}


local function arena_flags(aopts)
    local flags = 0
    if aopts.create ~= false then flags = bor(flags, MLC_ARENA_CREATE) end
    if aopts.exclusive then flags = bor(flags, MLC_ARENA_EXCL) end
    if aopts.file then flags = bor(flags, MLC_ARENA_FILE) end
    if aopts.anonymous then flags = bor(flags, MLC_ARENA_ANON) end
    if aopts.foreign then flags = bor(flags, MLC_ARENA_FOREIGN) end
    return flags
end


local function open_arena(name, aopts)
    lib()
    local o = ffi_new("struct mlc_arena_options")
    o.size = ffi_sizeof(o)
    o.flags = arena_flags(aopts)
    o.mode = aopts.mode or 0
    o.bytes = aopts.size or aopts.bytes or 0
    o.max_items = aopts.max_items or 0
    o.page_size = aopts.page_size or 0
    o.log_cells = aopts.log_cells or 0
    o.flight_slots = aopts.flight_slots or 0
    o.max_namespaces = aopts.max_namespaces or 0
    o.neg_quota_pct = aopts.neg_quota_pct or 0

    local pp = ffi_new("struct mlc_arena *[1]")
    local rc = C.mlc_arena_open(pp, (not aopts.anonymous) and name or nil, o)
    if rc ~= 0 then
        return nil, rc
    end
    return pp[0]
end


local _M = {
    _VERSION = "0.1.0",
}
local mt = { __index = _M }


--- configure{ lib = "/path/to/libmlc.so" }: where libmlc is (before any
-- other call).
function _M.configure(opts)
    if type(opts) ~= "table" then
        error("opts must be a table", 2)
    end
    if opts.lib ~= nil then
        if type(opts.lib) ~= "string" then
            error("opts.lib must be a string", 2)
        end
        if C then
            error("libmlc is already loaded", 2)
        end
        lib_path = opts.lib
    end
    return true
end


--- arena(name, opts): create or attach the mlc arena `name` and register
-- it under that name for new(); returns true or nil, err.
--   opts.create (default true), opts.exclusive, opts.file (name is a
--   path), opts.anonymous (an anonymous mapping: only shared with workers
--   forked after this call, so call it in init_by_lua*), opts.foreign
--   (attach an arena owned by another uid), opts.mode, opts.size (bytes),
--   opts.max_items, opts.page_size, opts.log_cells, opts.flight_slots,
--   opts.max_namespaces, opts.neg_quota_pct: see mlc.h.
function _M.arena(name, opts)
    if type(name) ~= "string" then
        error("name must be a string", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("opts must be a table", 2)
    end
    opts = opts or {}

    local a, rc = open_arena(name, opts)
    if not a then
        return nil, "could not open mlc arena '" .. name .. "': "
                    .. strerror(rc)
    end
    ARENAS[name] = a            -- a previous handle stays valid (leaked)
    return true
end


--- unlink(name, is_file): remove an arena's name (processes that have it
-- mapped keep using it).
function _M.unlink(name, is_file)
    lib()
    ARENAS[name] = nil
    local rc = C.mlc_arena_unlink(name, is_file and MLC_ARENA_FILE or 0)
    if rc ~= 0 then
        return nil, strerror(rc)
    end
    return true
end


--- arena_info(name): a table of the arena's counters (mlc_arena_info).
function _M.arena_info(name)
    local a = ARENAS[name]
    if not a then
        return nil, "no such mlc arena: " .. tostring(name)
    end
    local i = ffi_new("struct mlc_arena_info")
    i.size = ffi_sizeof(i)
    local rc = C.mlc_arena_info(a, i)
    if rc ~= 0 then
        return nil, strerror(rc)
    end
    local t = {}
    for _, f in ipairs { "bytes", "max_items", "items", "neg_items",
                         "page_size", "pages", "pages_free", "value_max",
                         "sets", "evictions", "expired_reclaimed",
                         "index_evictions", "page_moves",
                         "orphans_reclaimed", "repairs", "write_failures",
                         "log_head", "namespaces", "format" } do
        t[f] = tonumber(i[f])
    end
    return t
end


function _M.lib_version()
    lib()
    return ffi_string(C.mlc_version_string())
end


-- ------------------------------------------------------------------ --
-- L1: a resty.lrucache indexed by mlc_key_hash(key) (a number), holding
-- { key, value, version }: invalidations name hashes, so an entry is found
-- by its hash; the key is kept to tell colliding keys apart.  Instances of
-- one name share one L1 per Lua VM, as in lua-resty-mlcache.

local NIL = setmetatable({}, { __tostring = function() return "<nil>" end })

local l1_mt = {}
l1_mt.__index = l1_mt

local L1S = setmetatable({}, { __mode = "v" })


-- The L1 index of a hash: its low 52 bits, a number that both the
-- interpreter and compiled code convert exactly.  (LuaJIT's JIT converts a
-- uint64_t >= 2^63 to a double with double rounding, so tonumber() of the
-- full hash can differ by one ulp between interpreted and compiled code:
-- an entry stored under one would never be found, nor invalidated, under
-- the other.)
local HASH_MASK = 0xFFFFFFFFFFFFFULL

local function hash_index(h)
    return tonumber(band(h, HASH_MASK))
end


local function key_hash(h, key)
    return hash_index(C.mlc_key_hash(h, key, #key))
end


-- The mlcache-like view of L1 by key (cache.lru): get, set, delete,
-- flush_all.  Tests use cache.lru:delete(key) to force an L2 read.
function l1_mt:get(key)
    local e = self.lru:get(key_hash(self.h, key))
    if e and e[1] == key then
        if e[2] == NIL then
            return nil
        end
        return e[2]
    end
end


function l1_mt:set(key, value, ttl)
    self.gen = self.gen + 1
    self.lru:set(key_hash(self.h, key), { key, value == nil and NIL or value,
                                         0 }, ttl)
end


function l1_mt:delete(key)
    self.gen = self.gen + 1
    self.lru:delete(key_hash(self.h, key))
end


function l1_mt:flush_all()
    self.gen = self.gen + 1
    self.lru:flush_all()
end


local function l1_put(l1, hk, key, value, ms, version)
    local ttl
    if ms ~= MLC_TTL_NEVER then
        ttl = ms / 1000
    end
    l1.lru:set(hk, { key, value, version }, ttl)
end


-- Apply the invalidation log: drop (or keep, when L2 still holds the very
-- version we have) the L1 entries of the keys changed since the last call.
local function poll(self)
    local rc = C.mlc_update_ex(self.h, self.hbuf, HASH_CAP, self.nbuf,
                               self.fbuf)
    local n = self.n32[0]
    if self.fbuf[0] == 0 and n == 0 then
        return
    end

    local l1 = self.l1
    l1.gen = l1.gen + 1
    if rc ~= 0 or self.fbuf[0] ~= 0 then
        l1.lru:flush_all()
        return
    end

    local lru = l1.lru
    local h = self.h
    local v = self.val
    for i = 0, n - 1 do
        local hk = hash_index(self.hbuf[i])
        local e = lru:get(hk)
        if e then
            -- A change of this hash: keep our entry only if L2 holds the
            -- same version (our own write or fill coming back to us).
            local key = e[1]
            local keep = false
            if C.mlc_peek(h, key, #key, 0, v) == 0 then
                keep = e[3] ~= 0 and tonumber(v[0].version) == e[3]
                C.mlc_value_release(v)
            end
            if not keep then
                lru:delete(hk)
            end

        else
            lru:delete(hk)
        end
    end
end


-- ------------------------------------------------------------------ --
-- Options

local function check_lock_opts(lo, where, level)
    for _, f in ipairs { "timeout", "exptime", "step", "ratio", "max_step" } do
        local x = lo[f]
        if x ~= nil and (type(x) ~= "number" or x < 0) then
            error(where .. "." .. f .. " must be a number >= 0", level + 1)
        end
    end
end


local function lock_params(self, lo)
    if lo == nil then
        return self.lock
    end
    local d = self.lock
    return {
        timeout  = lo.timeout  or d.timeout,
        step     = lo.step     or d.step,
        ratio    = lo.ratio    or d.ratio,
        max_step = lo.max_step or d.max_step,
    }
end


-- Per-call options of get()/set(): a table of the resolved values.
local function check_opts(self, opts)
    if opts == nil then
        return self.defaults
    end

    if type(opts) ~= "table" then
        error("opts must be a table", 3)
    end

    local ttl = opts.ttl
    if ttl ~= nil then
        if type(ttl) ~= "number" then
            error("opts.ttl must be a number", 3)
        end
        if ttl < 0 then
            error("opts.ttl must be >= 0", 3)
        end
    end

    local neg_ttl = opts.neg_ttl
    if neg_ttl ~= nil then
        if type(neg_ttl) ~= "number" then
            error("opts.neg_ttl must be a number", 3)
        end
        if neg_ttl < 0 then
            error("opts.neg_ttl must be >= 0", 3)
        end
    end

    local resurrect_ttl = opts.resurrect_ttl
    if resurrect_ttl ~= nil then
        if type(resurrect_ttl) ~= "number" then
            error("opts.resurrect_ttl must be a number", 3)
        end
        if resurrect_ttl < 0 then
            error("opts.resurrect_ttl must be >= 0", 3)
        end
    end

    local l1_serializer = opts.l1_serializer
    if l1_serializer ~= nil and type(l1_serializer) ~= "function" then
        error("opts.l1_serializer must be a function", 3)
    end

    local shm_set_tries = opts.shm_set_tries
    if shm_set_tries ~= nil then
        if type(shm_set_tries) ~= "number" then
            error("opts.shm_set_tries must be a number", 3)
        end
        if shm_set_tries < 1 then
            error("opts.shm_set_tries must be >= 1", 3)
        end
    end

    local lo = opts.resty_lock_opts
    if lo ~= nil then
        if type(lo) ~= "table" then
            error("opts.resty_lock_opts must be a table", 3)
        end
        check_lock_opts(lo, "opts.resty_lock_opts", 3)
    end

    local d = self.defaults
    return {
        ttl           = ttl or d.ttl,
        neg_ttl       = neg_ttl or d.neg_ttl,
        resurrect_ttl = resurrect_ttl or d.resurrect_ttl,
        l1_serializer = l1_serializer or d.l1_serializer,
        shm_set_tries = shm_set_tries or d.shm_set_tries,
        lock          = lock_params(self, lo),
    }
end


-- ------------------------------------------------------------------ --
-- new(name, shm, opts)

function _M.new(name, shm, opts)
    if type(name) ~= "string" then
        error("name must be a string", 2)
    end

    if type(shm) ~= "string" then
        error("shm must be a string", 2)
    end

    if opts ~= nil then
        if type(opts) ~= "table" then
            error("opts must be a table", 2)
        end

        if opts.lru_size ~= nil and type(opts.lru_size) ~= "number" then
            error("opts.lru_size must be a number", 2)
        end

        if opts.ttl ~= nil then
            if type(opts.ttl) ~= "number" then
                error("opts.ttl must be a number", 2)
            end
            if opts.ttl < 0 then
                error("opts.ttl must be >= 0", 2)
            end
        end

        if opts.neg_ttl ~= nil then
            if type(opts.neg_ttl) ~= "number" then
                error("opts.neg_ttl must be a number", 2)
            end
            if opts.neg_ttl < 0 then
                error("opts.neg_ttl must be >= 0", 2)
            end
        end

        if opts.resurrect_ttl ~= nil then
            if type(opts.resurrect_ttl) ~= "number" then
                error("opts.resurrect_ttl must be a number", 2)
            end
            if opts.resurrect_ttl < 0 then
                error("opts.resurrect_ttl must be >= 0", 2)
            end
        end

        if opts.resty_lock_opts ~= nil then
            if type(opts.resty_lock_opts) ~= "table" then
                error("opts.resty_lock_opts must be a table", 2)
            end
            check_lock_opts(opts.resty_lock_opts, "opts.resty_lock_opts", 2)
        end

        if opts.ipc_shm ~= nil and type(opts.ipc_shm) ~= "string" then
            error("opts.ipc_shm must be a string", 2)
        end

        if opts.ipc ~= nil then
            if opts.ipc_shm then
                error("cannot specify both of opts.ipc_shm and opts.ipc", 2)
            end

            if type(opts.ipc) ~= "table" then
                error("opts.ipc must be a table", 2)
            end

            if type(opts.ipc.register_listeners) ~= "function" then
                error("opts.ipc.register_listeners must be a function", 2)
            end

            if type(opts.ipc.broadcast) ~= "function" then
                error("opts.ipc.broadcast must be a function", 2)
            end

            if opts.ipc.poll ~= nil and type(opts.ipc.poll) ~= "function" then
                error("opts.ipc.poll must be a function", 2)
            end
        end

        if opts.l1_serializer ~= nil
           and type(opts.l1_serializer) ~= "function"
        then
            error("opts.l1_serializer must be a function", 2)
        end

        if opts.shm_set_tries ~= nil then
            if type(opts.shm_set_tries) ~= "number" then
                error("opts.shm_set_tries must be a number", 2)
            end
            if opts.shm_set_tries < 1 then
                error("opts.shm_set_tries must be >= 1", 2)
            end
        end

        if opts.shm_miss ~= nil and type(opts.shm_miss) ~= "string" then
            error("opts.shm_miss must be a string", 2)
        end

        if opts.shm_locks ~= nil and type(opts.shm_locks) ~= "string" then
            error("opts.shm_locks must be a string", 2)
        end

        if opts.lru ~= nil and type(opts.lru) ~= "table" then
            error("opts.lru must be a table", 2)
        end

    else
        opts = {}
    end

    lib()

    local arena = ARENAS[shm]
    if not arena then
        local rc
        arena, rc = open_arena(shm, { create = false })
        if not arena then
            if rc == ENOENT then
                return nil, "no such mlc arena: " .. shm
            end
            return nil, "could not attach mlc arena '" .. shm .. "': "
                        .. strerror(rc)
        end
        ARENAS[shm] = arena
    end

    local ttl = opts.ttl or 30
    local neg_ttl = opts.neg_ttl or 5
    local rlo = opts.resty_lock_opts or {}
    local lock = {
        timeout  = rlo.timeout  or 5,
        exptime  = rlo.exptime  or 30,
        step     = rlo.step     or 0.001,
        ratio    = rlo.ratio    or 2,
        max_step = rlo.max_step or 0.02,
    }
    if lock.ratio < 1 then
        lock.ratio = 1
    end

    local co = ffi_new("struct mlc_cache_options")
    co.size = ffi_sizeof(co)
    co.flags = bor(MLC_CACHE_MANUAL_UPDATE, MLC_CACHE_NO_L1)
    co.ttl_ms = ttl_ms(ttl)
    co.neg_ttl_ms = ttl_ms(neg_ttl)
    co.lock_timeout_ms = min(floor(lock.timeout * 1000), 2^31)
    co.lock_lease_ms = min(math.max(ceil(lock.exptime * 1000), 1), 2^31)

    local pp = ffi_new("struct mlc_cache *[1]")
    local rc = C.mlc_cache_open(pp, arena, name, co)
    if rc ~= 0 then
        return nil, "could not open mlc cache '" .. name .. "' in arena '"
                    .. shm .. "': " .. strerror(rc)
    end
    local h = pp[0]

    -- one L1 per (arena, name) in this VM
    local l1key = shm .. "\0" .. name
    local l1 = L1S[l1key]
    if not l1 or (opts.lru and l1.lru ~= opts.lru) then
        l1 = setmetatable({
            lru = opts.lru or lrucache.new(opts.lru_size or 100),
            h = h,
            gen = 0,
        }, l1_mt)
        L1S[l1key] = l1
    end

    local nbuf = ffi_new("size_t[1]")
    local self = {
        name     = name,
        shm      = shm,
        h        = h,
        l1       = l1,
        lru      = l1,
        lock     = lock,
        ttl      = ttl,
        neg_ttl  = neg_ttl,
        resurrect_ttl = opts.resurrect_ttl,
        lru_size = opts.lru_size or 100,
        l1_serializer = opts.l1_serializer,
        shm_set_tries = opts.shm_set_tries or 3,
        val      = ffi_new(value_t),
        hbuf     = ffi_new("uint64_t[?]", HASH_CAP),
        nbuf     = nbuf,
        n32      = N32_OFF == 0 and ffi_cast("uint32_t *", nbuf)
                   or ffi_cast("uint32_t *", nbuf) + N32_OFF,
        fbuf     = ffi_new("uint32_t[1]"),
        copts    = ffi_new(callopts_t),
        _keep    = {},
    }
    self.copts.size = ffi_sizeof(callopts_t)
    self.defaults = {
        ttl           = ttl,
        neg_ttl       = neg_ttl,
        resurrect_ttl = opts.resurrect_ttl,
        l1_serializer = opts.l1_serializer,
        shm_set_tries = self.shm_set_tries,
        lock          = lock,
    }

    return setmetatable(self, mt)
end


-- ------------------------------------------------------------------ --
-- Lookups

local YIELDABLE = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
    preread = true,
}


local function run_l1_serializer(ser, value)
    local ok, v, err = pcall(ser, value)
    if not ok then
        return nil, "l1_serializer threw an error: " .. tostring(v)
    end
    if err then
        return nil, err
    end
    if v == nil then
        return nil, "l1_serializer returned a nil value"
    end
    return v
end


-- Put what L2 (or a load) gave into L1 and return it the mlcache way.
-- value: decoded (nil for a negative); ms: TTL left (mlc ms); version 0 =
-- not in L2.  No L1 insert when insert == false, or when the L1 saw an
-- invalidation while the l1_serializer ran (it may yield).
local function l1_fill(self, key, hk, value, ms, version, lvl, ser, insert)
    local l1 = self.l1
    if value == nil then
        if insert then
            l1_put(l1, hk, key, NIL, ms, version)
        end
        return nil, nil, lvl
    end

    if ser then
        local gen = l1.gen
        local err
        value, err = run_l1_serializer(ser, value)
        if err then
            return nil, err
        end
        if l1.gen ~= gen then
            insert = false
        end
    end

    if insert then
        l1_put(l1, hk, key, value, ms, version)
    end

    return value, nil, lvl
end


-- Read the filled value struct: value, resurrected, ms, version, flags,
-- err (then released).
local function take_value(v)
    local vv = v[0]
    local flags = vv.flags
    local ms = tonumber(vv.ttl_ms)
    local version = tonumber(vv.version)
    local value, stale, err
    if band(flags, MLC_NEGATIVE) == 0 then
        value, stale, err = decode(vv.data, tonumber(vv.len))
    else
        stale = false
    end
    if band(flags, MLC_STALE) ~= 0 then
        stale = true
    end
    C.mlc_value_release(v)
    return value, stale, ms, version, flags, err
end


local L2_MISS, L2_FRESH, L2_EXPIRED, L2_ERR = 0, 1, 2, 3


-- L2 lookup.  Returns kind and:
--   L2_FRESH:   value, resurrected, ms, version
--   L2_EXPIRED: stale = { bytes = ..., neg = bool } (when stale_ok)
--   L2_ERR:     message
local function l2_lookup(self, key, stale_ok)
    local v = self.val
    local rc = C.mlc_peek(self.h, key, #key, stale_ok and MLC_CALL_STALE_OK
                                                  or 0, v)
    if rc == ENOENT then
        return L2_MISS
    end
    if rc ~= 0 then
        return L2_ERR, "could not read from mlc arena '" .. self.shm .. "': "
                       .. ffi_string(C.mlc_last_error(self.h))
    end

    local vv = v[0]
    if band(vv.flags, MLC_STALE) ~= 0 and vv.ttl_ms == 0 then
        -- expired: keep its bytes for resurrection or lock timeouts
        local st = { neg = band(vv.flags, MLC_NEGATIVE) ~= 0 }
        if not st.neg then
            st.bytes = ffi_string(vv.data, vv.len)
        end
        C.mlc_value_release(v)
        return L2_EXPIRED, st
    end

    local value, stale, ms, version, _, err = take_value(v)
    if err then
        return L2_ERR, "could not deserialize value after mlc retrieval: "
                       .. err
    end
    return L2_FRESH, value, stale, ms, version
end


-- The decoded stale value of an L2_EXPIRED lookup: value, err.
local function stale_value(st)
    if st.neg then
        return nil
    end
    local value, _, err = decode(st.bytes, #st.bytes)
    return value, err
end


-- Serve a stale value without storing it (lock timeout, or another worker's
-- load failed): mlcache's "return data, nil, 4".
local function serve_stale(self, st, ser)
    local value, err = stale_value(st)
    if err then
        return nil, "could not deserialize value after mlc retrieval: " .. err
    end
    if value ~= nil and ser then
        value, err = run_l1_serializer(ser, value)
        if err then
            return nil, err
        end
    end
    return value, nil, 4
end


-- Store bytes (nil + neg for a negative) in L2 with mlc_set and learn the
-- version it got.  Returns version (false if unknown: another write came
-- after ours), ms, or nil and err.
local function l2_set(self, key, bytes, neg, ttl, tries)
    local co = self.copts
    local ms = ttl_ms(ttl)
    co.flags = neg and MLC_CALL_NEGATIVE or 0
    co.ttl_ms = ms
    co.neg_ttl_ms = ms

    local h = self.h
    local len = bytes and #bytes or 0
    local rc
    for _ = 1, tries or 1 do
        rc = C.mlc_set(h, key, #key, bytes, len, co)
        if rc ~= ENOSPC then
            break
        end
    end
    if rc ~= 0 then
        return nil, "could not write to mlc arena '" .. self.shm .. "': "
                    .. strerror(rc)
    end

    local v = self.val
    if C.mlc_peek(h, key, #key, 0, v) ~= 0 then
        return false, ms
    end
    local vv = v[0]
    local same
    if neg then
        same = band(vv.flags, MLC_NEGATIVE) ~= 0
    else
        same = band(vv.flags, MLC_NEGATIVE) == 0 and vv.len == len
               and ffi.C.memcmp(vv.data, bytes, len) == 0
    end
    local version = same and tonumber(vv.version) or false
    ms = tonumber(vv.ttl_ms)
    C.mlc_value_release(v)
    return version, ms
end


local function new_ticket(h, key)
    local tk = ffi_new(flight_t)
    -- A flight left open (the request's coroutine was killed) is given up
    -- when the ticket is collected; the closure keeps the key alive, as
    -- the C side refers to its bytes until the flight ends.
    return ffi_gc(tk, function(t)
        if t.role ~= MLC_FLIGHT_NONE and key then
            C.mlc_flight_abandon(h, t)
        end
    end)
end


local function end_ticket(self, tk)
    if tk.role ~= MLC_FLIGHT_NONE then
        C.mlc_flight_abandon(self.h, tk)
    end
end


local function publish_error(self, tk, msg)
    local ld = ffi_new(load_t)
    local n = min(#msg, 159)
    ffi_copy(ld.errmsg, msg, n)
    C.mlc_flight_publish(self.h, tk, EIO, ld, nil)
end


-- This worker runs the callback (it holds the key's flight).
local function run_loader(self, key, hk, o, stale, tk, cb, ...)
    -- another worker may have stored it just before we got the flight
    local kind, a, b, c, d = l2_lookup(self, key, false)
    if kind == L2_FRESH then
        end_ticket(self, tk)
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end
    if kind == L2_ERR then
        end_ticket(self, tk)
        return nil, a
    end

    local ok, data, err, new_ttl = xpcall(cb, traceback, ...)
    if not ok then
        -- nothing to publish: the next in line runs its own callback
        end_ticket(self, tk)
        return nil, "callback threw an error: " .. tostring(data)
    end

    if err then
        err = tostring(err)

        if not stale or not o.resurrect_ttl then
            publish_error(self, tk, err)
            return data, err
        end

        ngx_log(WARN, "callback returned an error (", err, ") but stale ",
                "value found in mlc arena will be resurrected for ",
                o.resurrect_ttl, "s (resurrect_ttl)")

        local bytes = stale.neg and "z" or mark_stale(stale.bytes)
        local version, ms = l2_set(self, key, bytes, false, o.resurrect_ttl,
                                   o.shm_set_tries)
        publish_error(self, tk, err)  -- waiters find the resurrected value
        if version == nil then
            ngx_log(WARN, "could not resurrect stale data (", ms, ")")
            ms = ttl_ms(o.resurrect_ttl)
        end

        local value, derr = stale_value(stale)
        if derr then
            return nil, "could not deserialize value after mlc retrieval: "
                        .. derr
        end
        return l1_fill(self, key, hk, value, ms, version or 0, 4,
                       o.l1_serializer, version and true or false)
    end

    -- success: data, nil, new_ttl?
    local no_cache = false
    local ttl = data == nil and o.neg_ttl or o.ttl
    if type(new_ttl) == "number" and new_ttl == new_ttl then
        if new_ttl < 0 then
            no_cache = true
        else
            ttl = new_ttl
        end
    end

    local ld = ffi_new(load_t)
    local bytes, result
    if data == nil then
        result = MLC_LOAD_NOTFOUND

    else
        local eerr, terr
        bytes, eerr, terr = encode(data)
        if not bytes then
            -- nothing for the waiters: the next in line runs its callback
            end_ticket(self, tk)
            if no_cache then
                return data, nil, 3     -- mlcache never encodes a bypass
            end
            if terr then
                error(terr, 3)
            end
            return nil, eerr
        end
        ld.data = bytes
        ld.len = #bytes
        result = MLC_LOAD_VALUE
    end
    ld.ttl_ms = ttl_ms(ttl)
    if no_cache then
        ld.flags = MLC_LOAD_NO_CACHE
    end

    local v = self.val
    local keep = self._keep
    keep[1] = bytes             -- ld.data points into it
    local rc = C.mlc_flight_publish(self.h, tk, result, ld, v)
    keep[1] = nil
    if rc ~= 0 then
        return nil, "could not store the callback's value: "
                    .. ffi_string(C.mlc_last_error(self.h))
    end

    local vv = v[0]
    local flags = vv.flags
    local ms = tonumber(vv.ttl_ms)
    local version = tonumber(vv.version)
    C.mlc_value_release(v)

    if no_cache then
        return data, nil, 3     -- as mlcache: raw, not through l1_serializer
    end

    local insert = band(flags, MLC_NOT_CACHED) == 0
    if band(flags, MLC_L2_WRITE_FAILED) ~= 0 then
        ngx_log(WARN, "could not write to mlc arena '", self.shm, "' (",
                "no room, or value larger than a page), the value is ",
                "cached in this worker's L1 only")
        version = 0
        ms = ttl_ms(ttl)
    end

    return l1_fill(self, key, hk, data, ms, version, 3, o.l1_serializer,
                   insert)
end


-- After a lock timeout: look in L2 once more, else the stale value, else
-- the error.
local function lock_timed_out(self, key, hk, o, stale)
    local kind, a, b, c, d = l2_lookup(self, key, false)
    if kind == L2_FRESH then
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end

    local errmsg = "could not acquire callback lock: timeout"
    if not stale or not o.resurrect_ttl then
        return nil, errmsg
    end

    ngx_log(WARN, errmsg)
    return serve_stale(self, stale, o.l1_serializer)
end


-- L3: single flight across workers (and across this worker's requests).
local function get_l3(self, key, hk, o, stale, cb, ...)
    local h = self.h
    local tk = new_ticket(h, key)
    local rc = C.mlc_flight_acquire(h, key, #key, nil, tk)
    if rc ~= 0 then
        return nil, "could not acquire callback lock: "
                    .. ffi_string(C.mlc_last_error(h))
    end

    if tk.role == MLC_FLIGHT_WAITER then
        -- Poll the flight without ever blocking in C; sleep between polls
        -- (step, growing by ratio up to max_step) until the lock timeout.
        local lock = o.lock
        local timeout = lock.timeout
        local step = lock.step
        local can_sleep = YIELDABLE[get_phase()]
        local t0 = now()
        local slept = 0
        local v = self.val
        if step < 0.001 then
            step = 0.001
        end

        while true do
            rc = C.mlc_flight_wait(h, tk, 0, v)
            if rc ~= EAGAIN then
                break
            end

            -- ngx.now() is the event loop's cached time: count what we
            -- slept too, so that the loop ends whatever the clock says
            local elapsed = now() - t0
            if elapsed < slept then
                elapsed = slept
            end
            if not can_sleep or timeout - elapsed < 0.001 then
                end_ticket(self, tk)
                return lock_timed_out(self, key, hk, o, stale)
            end

            local s = step
            if elapsed + s > timeout then
                s = timeout - elapsed
            end
            sleep(s)
            slept = slept + s

            step = step * lock.ratio
            if step > lock.max_step then
                step = lock.max_step
            end
        end

        if rc == 0 and tk.role ~= MLC_FLIGHT_LOADER then
            -- the loader's outcome, read from L2 (or its outcome record)
            local value, rstale, ms, version, flags, err = take_value(v)
            if err then
                return nil, "could not deserialize value after mlc "
                            .. "retrieval: " .. err
            end
            return l1_fill(self, key, hk, value, ms, version,
                           rstale and 4 or 2, o.l1_serializer,
                           band(flags, MLC_NOT_CACHED) == 0)
        end

        if rc == MLC_ELOADER then
            -- the loader's callback returned an error
            local err = ffi_string(C.mlc_last_error(h))
            if stale and o.resurrect_ttl then
                return serve_stale(self, stale, o.l1_serializer)
            end
            return nil, err
        end

        if rc ~= 0 then
            end_ticket(self, tk)
            return nil, "could not acquire callback lock: " .. strerror(rc)
        end

        -- rc == 0 and LOADER: the owner died, overran its lease, or gave
        -- up (its callback threw): our turn
    end

    return run_loader(self, key, hk, o, stale, tk, cb, ...)
end


-- Everything after an L1 miss.
local function get_l2_l3(self, key, hk, o, cb, ...)
    local klen = #key
    if klen == 0 or klen > 65535 then
        return nil, "invalid key: keys are 1 to 65535 bytes long"
    end

    local kind, a, b, c, d = l2_lookup(self, key, cb ~= nil)
    if kind == L2_FRESH then
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end
    if kind == L2_ERR then
        return nil, a
    end

    if cb == nil then
        return nil, nil, -1
    end

    return get_l3(self, key, hk, o, kind == L2_EXPIRED and a or nil, cb, ...)
end


function _M:get(key, opts, cb, ...)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    if cb ~= nil and type(cb) ~= "function" then
        error("callback must be nil or a function", 2)
    end

    poll(self)

    local hk = key_hash(self.h, key)
    local e = self.l1.lru:get(hk)
    if e and e[1] == key then
        local value = e[2]
        if value == NIL then
            return nil, nil, 1
        end
        return value, nil, 1
    end

    local o = check_opts(self, opts)
    return get_l2_l3(self, key, hk, o, cb, ...)
end


function _M:peek(key, stale)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    poll(self)

    local v = self.val
    local rc = C.mlc_peek(self.h, key, #key,
                          stale and MLC_CALL_STALE_OK or 0, v)
    if rc == ENOENT then
        return nil
    end
    if rc ~= 0 then
        return nil, "could not read from mlc arena '" .. self.shm .. "': "
                    .. ffi_string(C.mlc_last_error(self.h))
    end

    local vv = v[0]
    local went_stale = band(vv.flags, MLC_STALE) ~= 0 and vv.ttl_ms == 0
    local remaining
    if band(vv.flags, MLC_NO_EXPIRY) ~= 0 then
        remaining = 0
    elseif went_stale then
        remaining = -0.001      -- expired; mlc does not say since when
    else
        remaining = tonumber(vv.ttl_ms) / 1000
    end

    local value, _, _, _, _, err = take_value(v)
    if err then
        return nil, "could not deserialize value after mlc retrieval: " .. err
    end

    return remaining, nil, value, went_stale
end


function _M:set(key, opts, value)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    local o = check_opts(self, opts)

    local bytes, err, terr
    if value ~= nil then
        bytes, err, terr = encode(value)
        if not bytes then
            if terr then
                error(terr, 2)
            end
            return nil, err
        end
    end

    local ttl = value == nil and o.neg_ttl or o.ttl
    local version, ms = l2_set(self, key, bytes, value == nil, ttl,
                               o.shm_set_tries)
    if version == nil then
        return nil, ms
    end

    local l1 = self.l1
    l1.gen = l1.gen + 1
    local hk = key_hash(self.h, key)
    if not version then
        -- another write came right after ours: L1 learns it from L2
        l1.lru:delete(hk)
        return true
    end

    local _
    _, err = l1_fill(self, key, hk, value, ms, version, nil, o.l1_serializer,
                     true)
    if err then
        return nil, err
    end

    return true
end


function _M:delete(key)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    local rc = C.mlc_delete(self.h, key, #key)
    if rc ~= 0 then
        return nil, "could not delete from mlc arena '" .. self.shm .. "': "
                    .. strerror(rc)
    end

    local l1 = self.l1
    l1.gen = l1.gen + 1
    l1.lru:delete(key_hash(self.h, key))

    return true
end


function _M:purge(flush_expired)     -- luacheck: ignore flush_expired
    local rc = C.mlc_purge(self.h)
    if rc ~= 0 then
        return nil, "could not purge mlc namespace '" .. self.name .. "': "
                    .. strerror(rc)
    end

    self.l1:flush_all()

    return true
end


function _M:update(timeout)          -- luacheck: ignore timeout
    poll(self)
    return true
end


-- ------------------------------------------------------------------ --
-- get_bulk(bulk, opts), new_bulk(n), each_bulk_res(res)

local BULK_DEFAULT_CONCURRENCY = 3

local bulk_mt = {}
bulk_mt.__index = bulk_mt


function _M.new_bulk(n_ops)
    local bulk = {}
    bulk.n = 0
    return setmetatable(bulk, bulk_mt)
end


function bulk_mt:add(key, opts, cb, arg)
    local i = (self.n * 4) + 1
    self[i] = key
    self[i + 1] = opts
    self[i + 2] = cb
    self[i + 3] = arg
    self.n = self.n + 1
end


local function bulk_res_iter(res, i)
    local idx = i * 3 + 1
    if idx > res.n then
        return
    end

    i = i + 1

    return i, res[idx], res[idx + 1], res[idx + 2]
end


function _M.each_bulk_res(res)
    if not res.n then
        error("res must have res.n field; is this a get_bulk() result?", 2)
    end

    return bulk_res_iter, res, 0
end


local function run_tasks(self, tasks, res, from, to)
    for j = from, to do
        local t = tasks[j]
        local ok, data, err, lvl = pcall(get_l3, self, t.key, t.hk, t.o,
                                         t.stale, t.cb, t.arg)
        if not ok then
            data, err, lvl = nil, tostring(data), nil
        end
        res[t.idx] = data
        res[t.idx + 1] = err
        res[t.idx + 2] = lvl
    end
end


function _M:get_bulk(bulk, opts)
    if type(bulk) ~= "table" then
        error("bulk must be a table", 2)
    end

    if not bulk.n then
        error("bulk must have n field", 2)
    end

    local concurrency = BULK_DEFAULT_CONCURRENCY
    if opts then
        if type(opts) ~= "table" then
            error("opts must be a table", 2)
        end

        if opts.concurrency ~= nil then
            if type(opts.concurrency) ~= "number" then
                error("opts.concurrency must be a number", 2)
            end

            if opts.concurrency <= 0 then
                error("opts.concurrency must be > 0", 2)
            end

            concurrency = opts.concurrency
        end
    end

    poll(self)

    local n_bulk = bulk.n * 4
    local res = { n = bulk.n * 3 }
    local res_idx = 1
    local tasks
    local n_tasks = 0
    local lru = self.l1.lru
    local h = self.h

    for i = 1, n_bulk, 4 do
        local b_key = bulk[i]
        local b_opts = bulk[i + 1]
        local b_cb = bulk[i + 2]

        if type(b_key) ~= "string" then
            error("key at index " .. i .. " must be a string for operation "
                  .. ceil(i / 4) .. " (got " .. type(b_key) .. ")", 2)
        end

        if type(b_cb) ~= "function" then
            error("callback at index " .. i + 2 .. " must be a function "
                  .. "for operation " .. ceil(i / 4) .. " (got "
                  .. type(b_cb) .. ")", 2)
        end

        local hk = key_hash(h, b_key)
        local e = lru:get(hk)
        if e and e[1] == b_key then
            local value = e[2]
            if value == NIL then
                value = nil
            end
            res[res_idx] = value
            res[res_idx + 2] = 1

        else
            local pok, o = pcall(check_opts, self, b_opts)
            if not pok then
                local err = tostring(o):match("mlc%.lua:%d+: (.*)") or o
                error("options at index " .. i + 1 .. " for operation "
                      .. ceil(i / 4) .. " are invalid: " .. err, 2)
            end

            local kind, a, b, c, d
            if #b_key == 0 or #b_key > 65535 then
                kind, a = L2_ERR, "invalid key: keys are 1 to 65535 bytes long"
            else
                kind, a, b, c, d = l2_lookup(self, b_key, true)
            end

            if kind == L2_FRESH then
                res[res_idx], res[res_idx + 1], res[res_idx + 2] =
                    l1_fill(self, b_key, hk, a, c, d, b and 4 or 2,
                            o.l1_serializer, true)

            elseif kind == L2_ERR then
                res[res_idx + 1] = a

            else
                n_tasks = n_tasks + 1
                tasks = tasks or {}
                tasks[n_tasks] = {
                    idx = res_idx, key = b_key, hk = hk, o = o,
                    stale = kind == L2_EXPIRED and a or nil,
                    cb = b_cb, arg = bulk[i + 3],
                }
            end
        end

        res_idx = res_idx + 3
    end

    if n_tasks == 0 then
        return res
    end

    local n_threads = min(n_tasks, concurrency)
    if n_threads <= 1 or not YIELDABLE[get_phase()] then
        run_tasks(self, tasks, res, 1, n_tasks)
        return res
    end

    -- contiguous chunks; this thread runs the first one
    local chunk = ceil(n_tasks / n_threads)
    local threads = {}
    local from = chunk + 1
    while from <= n_tasks do
        local to = min(from + chunk - 1, n_tasks)
        local th, err = thread_spawn(run_tasks, self, tasks, res, from, to)
        if not th then
            -- no thread: do it here
            ngx_log(ERR, "could not spawn thread for get_bulk(): ", err)
            run_tasks(self, tasks, res, from, to)
        else
            threads[#threads + 1] = th
        end
        from = to + 1
    end

    run_tasks(self, tasks, res, 1, min(chunk, n_tasks))

    for i = 1, #threads do
        local ok, err = thread_wait(threads[i])
        if not ok then
            ngx_log(ERR, "failed to wait for thread number ", i, ": ", err)
        end
    end

    return res
end


-- For tests: the L1 index of a hash.
_M._hash_index = function(h)
    return hash_index(h)
end

-- For tests and operators: this instance's encoding helpers.
_M._encode = encode
_M._decode = function(s)
    return decode(s, #s)
end


return _M
