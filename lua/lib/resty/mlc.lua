-- resty.mlc: lua-resty-mlcache's API on top of mlc (libmlc), through the
-- LuaJIT FFI.
--
--   L1  Lua objects per worker, per arena handle and instance name, keyed
--       by the key (CLOCK eviction).  It stays coherent through mlc's
--       invalidation log: every get()/peek() compares the log head with its
--       cursor (one shared load) and applies what changed when they differ.
--   L2  an mlc arena (shared memory, see mlc.h), named by `shm`.
--   L3  the callback, run by one worker at a time per key (mlc's single
--       flight, driven from Lua so that the callback may yield).
--
-- See lua/README.md for the option mapping and the differences from
-- lua-resty-mlcache.

local ffi      = require "ffi"
local bit      = require "bit"

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
local rawequal = rawequal
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

if not pcall(ffi.typeof, "struct mlc_update_record") then
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
    uint64_t read_giveups;
    uint32_t namespaces;
    uint32_t format;
    uint64_t stale_frees;
    uint64_t orphan_skips;
    uint64_t created_ms;
    uint64_t index_moves;
    uint32_t procs;
    uint32_t arena_handles;
    uint64_t cache_handles;
    uint64_t procs_unlisted;
    uint64_t procs_pruned;
    uint64_t huge_bytes;
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
struct mlc_update_record {
    uint64_t hash;
    uint64_t version;
};
int mlc_update_records(struct mlc_cache *cache,
                       struct mlc_update_record *recs, size_t cap, size_t *n,
                       uint32_t *flags);
int mlc_update_watch(struct mlc_cache *cache, const volatile uint64_t **head,
                     const uint64_t **cursor);

struct mlc_stats {
    size_t   size;
    uint64_t hits_l1, hits_l2;
    uint64_t hits_l3;
    uint64_t misses;
    uint64_t negative_hits;
    uint64_t stale_served;
    uint64_t loads, loader_errors;
    uint64_t codec_errors;
    uint64_t l1_evictions;
    uint64_t l2_write_failures;
    uint64_t sets, deletes, purges;
    uint64_t lock_waits;
    uint64_t lock_wait_ms;
    uint64_t lock_timeouts, lock_steals, duplicate_loads;
    uint64_t fenced_writes;
    uint64_t err_ttl_hits;
    uint64_t log_published;
    uint64_t log_applied;
    uint64_t log_dropped;
    uint64_t log_overruns;
    uint64_t log_stuck;
    uint64_t forks;
};
int mlc_stats(struct mlc_cache *cache, struct mlc_stats *stats);
int mlc_namespace_stats(struct mlc_arena *arena, const char *ns,
                        struct mlc_stats *stats);

struct mlc_namespace_info {
    size_t   size;
    uint64_t items;
    uint64_t bytes;
    uint32_t purges;
    uint32_t pad0;
};
int mlc_namespace_info(struct mlc_arena *arena, const char *ns,
                       struct mlc_namespace_info *info);

const char *mlc_strerror(int code);
const char *mlc_last_error(struct mlc_cache *cache);
const char *mlc_version_string(void);
]]
end

if not pcall(function() return ffi.C.memcmp end) then
    ffi.cdef "int memcmp(const void *s1, const void *s2, size_t n);"
end


-- enum values of mlc.h (t/ffi_layout.sh checks each against the header)
local K = {
    MLC_ARENA_CREATE = 1, MLC_ARENA_EXCL = 2, MLC_ARENA_FILE = 4,
    MLC_ARENA_ANON = 8, MLC_ARENA_FOREIGN = 16,
    MLC_CACHE_MANUAL_UPDATE = 1, MLC_CACHE_NO_L1 = 2,
    MLC_NEGATIVE = 1, MLC_STALE = 2, MLC_NO_EXPIRY = 4, MLC_NOT_CACHED = 8,
    MLC_L2_WRITE_FAILED = 16,
    MLC_CALL_STALE_OK = 1, MLC_CALL_NEGATIVE = 4,
    MLC_LOAD_VALUE = 0, MLC_LOAD_NOTFOUND = 1, MLC_LOAD_NO_CACHE = 1,
    MLC_FLIGHT_NONE = 0, MLC_FLIGHT_LOADER = 1, MLC_FLIGHT_WAITER = 2,
    MLC_UPDATE_ALL = 1, MLC_TTL_NEVER = -1, MLC_ELOADER = -4203,
}
local MLC_ARENA_CREATE  = K.MLC_ARENA_CREATE
local MLC_ARENA_EXCL    = K.MLC_ARENA_EXCL
local MLC_ARENA_FILE    = K.MLC_ARENA_FILE
local MLC_ARENA_ANON    = K.MLC_ARENA_ANON
local MLC_ARENA_FOREIGN = K.MLC_ARENA_FOREIGN

local MLC_CACHE_MANUAL_UPDATE = K.MLC_CACHE_MANUAL_UPDATE
local MLC_CACHE_NO_L1         = K.MLC_CACHE_NO_L1

local MLC_NEGATIVE        = K.MLC_NEGATIVE
local MLC_STALE           = K.MLC_STALE
local MLC_NO_EXPIRY       = K.MLC_NO_EXPIRY
local MLC_NOT_CACHED      = K.MLC_NOT_CACHED
local MLC_L2_WRITE_FAILED = K.MLC_L2_WRITE_FAILED

local MLC_CALL_STALE_OK = K.MLC_CALL_STALE_OK
local MLC_CALL_NEGATIVE = K.MLC_CALL_NEGATIVE

local MLC_LOAD_VALUE    = K.MLC_LOAD_VALUE
local MLC_LOAD_NOTFOUND = K.MLC_LOAD_NOTFOUND
local MLC_LOAD_NO_CACHE = K.MLC_LOAD_NO_CACHE

local MLC_FLIGHT_NONE   = K.MLC_FLIGHT_NONE
local MLC_FLIGHT_LOADER = K.MLC_FLIGHT_LOADER
local MLC_FLIGHT_WAITER = K.MLC_FLIGHT_WAITER

local MLC_TTL_NEVER  = K.MLC_TTL_NEVER
local MLC_ELOADER    = K.MLC_ELOADER

-- Linux errno values mlc returns negated
local ENOENT    = -2
local EIO       = -5
local EAGAIN    = -11
local EINVAL    = -22
local ENOSPC    = -28

local REC_CAP = 256           -- records taken per mlc_update_records() call

-- mlc_update_records()'s count is a size_t: read its low 32 bits as a
-- number (no 64-bit cdata boxed on the interpreter's fast path)
local N32_OFF = (ffi.sizeof("size_t") == 8 and ffi.abi("be")) and 1 or 0

local u8p = ffi.typeof("const uint8_t *")
local value_t = ffi.typeof("struct mlc_value[1]")
local load_t = ffi.typeof("struct mlc_load")
local callopts_t = ffi.typeof("struct mlc_call_options")
local dbl = ffi_new("double[1]")

local ok_buf, strbuf = pcall(require, "string.buffer")
if not ok_buf then
    strbuf = nil
end


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
-- Value encoding in L2: one tag byte, the expiry as an 8-byte native
-- double (ngx.now() seconds; 0 = never), then the payload.  The expiry is
-- what makes TTLs follow ngx.now() as lua-resty-mlcache's do: peek() and
-- the L1 TTL of a value read from L2 are its expiry minus ngx.now(), not
-- mlc's monotonic clock (mlc keeps the entry a little longer, see
-- L2_MARGIN_MS, and an entry past its expiry counts as expired here).
--
--   'S' string      payload: the bytes
--   'N' number      payload: 8 bytes, the native double
--   'T' / 'F'       true / false, no payload
--   'L' table       payload: string.buffer's serialization (LuaJIT), or
--                   'M' with the fallback encoding below
--   'Z' nil         only for a resurrected negative entry (a normal cached
--                   nil is an mlc negative entry, with no bytes at all)
--
-- A lower-case tag ('s', 'n', 't', 'f', 'l', 'm', 'z') marks a value that
-- was resurrected (served stale): reads from L2 report hit level 4.
--
-- The fallback table encoding (a LuaJIT without string.buffer):
--   's' u32le length, bytes | 'n' 8-byte double | 't' | 'f'
--   '{' (key value)* '}'
-- Keys: strings, numbers, booleans.  Values: those and tables, nested at
-- most MAX_DEPTH deep (a cycle is reported as too deep).  Metatables are
-- not kept; a table referenced twice is stored twice.

local TAG_STR, TAG_NUM, TAG_TRUE, TAG_FALSE, TAG_TAB, TAG_TABM, TAG_NIL =
      83, 78, 84, 70, 76, 77, 90                -- S N T F L M Z
local STALE_BIT = 32                            -- upper -> lower case
local MAX_DEPTH = 100
local HDR = 9                                   -- tag + expiry

-- mlc keeps a positive entry this much longer than its TTL: the expiry in
-- its bytes (ngx.now()'s clock, cached per event-loop turn) decides, and
-- this margin covers how far ngx.now() may lag mlc's clock.
local L2_MARGIN_MS = 1000

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


-- One buffer for every encoding: its bytes are handed to mlc (which copies
-- them) before anything can yield, so one per Lua VM will do.
local ebuf = strbuf and strbuf.new(256)
-- Tables are decoded from the value's bytes in place (no Lua string of
-- them: at 100,000 keys that string's allocation and interning cost more
-- than the decode).  The pointer handed to dbuf:set() is a new cdata each
-- time (24 bytes the JIT cannot sink: the buffer keeps a reference).  Left
-- so on purpose: it is the only allocation the compiled L2 hit makes
-- itself, hence its only GC check.  The decoded table is allocated inside
-- string.buffer's C code, which never steps the GC; copying the bytes into
-- a fixed scratch array instead saves the 24 bytes, but then a loop of L2
-- hits runs no GC step at all and the heap grows until something else
-- checks (+470 MB over 2,000,000 hits of a small table, measured).
local dbuf = strbuf and strbuf.new()
local function dbuf_decode(p, n)
    dbuf:set(p, n)
    local t = dbuf:decode()
    dbuf:reset()
    return t
end


local function expiry_bytes(expire)
    dbl[0] = expire
    return ffi_string(dbl, 8)
end


local function enc_table_fallback(t, ex)
    local buf = { "M", ex }
    local ok, err = pcall(enc_any, t, buf, 2, 0)
    if not ok then
        return nil, err
    end
    return concat(buf)
end


-- Encode a Lua value for L2, expiring at @expire (ngx.now() seconds, 0 =
-- never).  Returns ptr, len (valid until the next encode; no yield in
-- between), or nil and an error; or nil, nil, err for a type that cannot
-- be cached at all (get() and set() throw it, as lua-resty-mlcache does).
local function encode(v, expire)
    local t = type(v)
    if ebuf then
        dbl[0] = expire
        if t == "string" then
            ebuf:reset():put("S"):putcdata(dbl, 8):put(v)
        elseif t == "number" then
            ebuf:reset():put("N"):putcdata(dbl, 8)
            dbl[0] = v
            ebuf:putcdata(dbl, 8)
        elseif t == "boolean" then
            ebuf:reset():put(v and "T" or "F"):putcdata(dbl, 8)
        elseif t == "table" then
            ebuf:reset():put("L"):putcdata(dbl, 8)
            local ok, err = pcall(ebuf.encode, ebuf, v)
            if not ok then
                return nil, "could not serialize value for L2 insertion: "
                            .. "could not encode table value: "
                            .. tostring(err)
            end
        else
            return nil, nil, "cannot cache value of type " .. t
        end
        local p, n = ebuf:ref()
        return p, n
    end

    local s
    if t == "string" then
        s = "S" .. expiry_bytes(expire) .. v
    elseif t == "number" then
        local ex = expiry_bytes(expire)
        dbl[0] = v
        s = "N" .. ex .. ffi_string(dbl, 8)
    elseif t == "boolean" then
        s = (v and "T" or "F") .. expiry_bytes(expire)
    elseif t == "table" then
        local err
        s, err = enc_table_fallback(v, expiry_bytes(expire))
        if not s then
            return nil, "could not serialize value for L2 insertion: "
                        .. "could not encode table value: " .. err
        end
    else
        return nil, nil, "cannot cache value of type " .. t
    end
    return s, #s
end


-- The expiry of encoded bytes (ngx.now() seconds, 0 = never).
local function bytes_expiry(p)
    ffi_copy(dbl, p + 1, 8)
    return dbl[0]
end


-- Decode the bytes of an mlc value.  Returns value, resurrected, err.
local function decode(data, len)
    if len < HDR then
        return nil, false, "value too short (not written by resty.mlc)"
    end

    local p = ffi_cast(u8p, data)
    local tag = p[0]
    local stale = false
    if tag >= 97 then
        stale = true
        tag = tag - STALE_BIT
    end

    if tag == TAG_STR then
        return ffi_string(p + HDR, len - HDR), stale

    elseif tag == TAG_TAB then
        if not dbuf then
            return nil, stale, "could not decode table value: this LuaJIT "
                               .. "has no string.buffer"
        end
        local ok, t = pcall(dbuf_decode, p + HDR, len - HDR)
        if not ok then
            return nil, stale, "could not decode table value: "
                               .. tostring(t)
        end
        return t, stale

    elseif tag == TAG_NUM then
        if len ~= HDR + 8 then
            return nil, stale, "bad number encoding"
        end
        ffi_copy(dbl, p + HDR, 8)
        return dbl[0], stale

    elseif tag == TAG_TRUE then
        return true, stale

    elseif tag == TAG_FALSE then
        return false, stale

    elseif tag == TAG_TABM then
        local ok, t, pos = pcall(dec_any, p, len, HDR, 0)
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


-- The same bytes, marked resurrected (lower-case tag), expiring at
-- @expire.  Bytes that decode() takes (at least HDR of them): resurrect()
-- decodes them first.
local function restale(bytes, expire)
    local tag = byte(bytes, 1)
    if tag < 97 then
        tag = tag + STALE_BIT
    end
    return char(tag) .. expiry_bytes(expire) .. sub(bytes, HDR + 1)
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


-- seconds -> the expiry stored with a value (0 = never)
local function expiry_of(ttl)
    if ttl == 0 or ttl >= 2^52 then
        return 0
    end
    return now() + ttl
end

-- ------------------------------------------------------------------ --
-- Arenas, by name, for this Lua VM (inherited by workers when opened in
-- init_by_lua*).

local ARENAS = {}

-- Every handle this Lua VM opened (arenas and caches), closed when nginx
-- discards the master's VM (vm_close below).  Never before: L1s,
-- instances and tickets refer to them.
local OPENED_ARENAS, OPENED_CACHES = {}, {}
local vm_closed = false

local function opened(list, ptr)
    list[#list + 1] = ptr
end


-- mlc takes names (arenas, namespaces) as C strings: a NUL would cut one
-- short (mlc.new("a\0b") would open namespace "a").  Such a name is
-- refused as mlc refuses an empty one: nil, err.  c_name(name): true when
-- @name has no NUL byte; nul_name(name): the name as shown in messages,
-- and the error.
local function c_name(name)
    return not name:find("\0", 1, true)
end


local function nul_name(name)
    lib()
    return (name:gsub("%z", "\\0")),
           strerror(EINVAL) .. " (the name has a NUL byte)"
end


-- The options of mlc.arena(), checked before any reaches the FFI (which
-- throws a cdata conversion error on a string, and wraps a number out of
-- its field's range): the flags booleans, the rest whole numbers that fit
-- their field.  Thrown, as new() and get() throw bad options.
local ARENA_FLAG_OPTS = { "create", "exclusive", "file", "anonymous",
                          "foreign" }
local ARENA_NUM_OPTS = {       -- name, bits of its struct field
    { "size", 64 }, { "bytes", 64 }, { "mode", 32 }, { "max_items", 32 },
    { "page_size", 32 }, { "log_cells", 32 }, { "flight_slots", 32 },
    { "max_namespaces", 32 }, { "neg_quota_pct", 32 },
}

local function check_arena_opts(aopts, level)
    for _, f in ipairs(ARENA_FLAG_OPTS) do
        local x = aopts[f]
        if x ~= nil and type(x) ~= "boolean" then
            error("opts." .. f .. " must be a boolean", level + 1)
        end
    end
    for _, fb in ipairs(ARENA_NUM_OPTS) do
        local f, bits = fb[1], fb[2]
        local x = aopts[f]
        if x ~= nil then
            if type(x) ~= "number" then
                error("opts." .. f .. " must be a number", level + 1)
            end
            if not (x >= 0 and x < 2 ^ bits) or x ~= floor(x) then
                error("opts." .. f .. " must be a whole number from 0 to 2^"
                      .. bits .. " - 1", level + 1)
            end
        end
    end
end


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
    opened(OPENED_ARENAS, pp[0])
    return pp[0]
end


local _M = {
    _VERSION = "0.2.0",
}
local mt = { __index = _M }


-- When nginx discards the master's Lua VM (lua_close of the old VM on a
-- reload, HUP), close the handles that VM opened: else the master keeps
-- every earlier generation's arenas mapped for good (an anonymous arena's
-- memory is never given back).  Not in a worker: its handles go with its
-- process, which exits right after.  The closer is a cdata: its finalizer
-- runs only then (_M holds it, and package.loaded, every instance and
-- every running get() hold _M), and lua_close runs cdata finalizers before
-- userdata ones, among them the one that unloads libmlc (a call after it
-- would find no symbol: the pcall).  A ticket finalized after the closer
-- leaves its flight to mlc (the owner's lease, or its process's death).
local function close_all()
    if ngx.worker.id() ~= nil then
        return
    end
    vm_closed = true
    for _, h in ipairs(OPENED_CACHES) do
        C.mlc_cache_close(h)
    end
    for _, a in ipairs(OPENED_ARENAS) do
        C.mlc_arena_close(a)
    end
end

local function vm_close()
    pcall(close_all)
end

_M._vm_closer = ffi_gc(ffi_new("char[1]"), vm_close)


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
    check_arena_opts(opts, 2)

    if not c_name(name) then
        local shown, err = nul_name(name)
        return nil, "could not open mlc arena '" .. shown .. "': " .. err
    end

    local a, rc = open_arena(name, opts)
    if not a then
        return nil, "could not open mlc arena '" .. name .. "': "
                    .. strerror(rc)
    end
    ARENAS[name] = a            -- a previous handle stays open (vm_close)

    -- An arena that exists keeps its size (a reload after opts.size was
    -- changed attaches the old one): say so, as the nginx module does,
    -- rather than run on a size no one asked for without a word.
    local want = opts.size or opts.bytes
    if want and want ~= 0 then
        local i = ffi_new("struct mlc_arena_info")
        i.size = ffi_sizeof(i)
        if C.mlc_arena_info(a, i) == 0 and tonumber(i.bytes) ~= want then
            ngx_log(WARN, "mlc arena '", name, "' exists with ",
                    tonumber(i.bytes), " bytes, not the ", want,
                    " of opts.size: using it as it is (remove it with ",
                    "mlc.unlink() while nothing uses it to resize it)")
        end
    end
    return true
end


--- unlink(name, is_file): remove an arena's name (processes that have it
-- mapped keep using it).
function _M.unlink(name, is_file)
    if type(name) ~= "string" then
        error("name must be a string", 2)
    end
    lib()
    if not c_name(name) then
        local _, err = nul_name(name)
        return nil, err
    end
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
                         "log_head", "read_giveups", "namespaces", "format",
                         "stale_frees", "orphan_skips", "created_ms",
                         "index_moves", "procs", "arena_handles",
                         "cache_handles", "procs_unlisted",
                         "procs_pruned", "huge_bytes" } do
        t[f] = tonumber(i[f])
    end
    return t
end


local STATS_FIELDS = {
    "hits_l1", "hits_l2", "hits_l3", "misses", "negative_hits",
    "stale_served", "loads", "loader_errors", "codec_errors",
    "l1_evictions", "l2_write_failures", "sets", "deletes", "purges",
    "lock_waits", "lock_wait_ms", "lock_timeouts", "lock_steals",
    "duplicate_loads", "fenced_writes", "err_ttl_hits", "log_published",
    "log_applied", "log_dropped", "log_overruns", "log_stuck", "forks",
}


local function stats_table(st)
    local t = {}
    for _, f in ipairs(STATS_FIELDS) do
        t[f] = tonumber(st[f])
    end
    return t
end


--- namespace_stats(shm, name): the counters of instance name `name` (an
-- mlc namespace) summed over every worker and process, as far as each has
-- flushed them (mlc_namespace_stats; a cache:stats() call flushes this
-- worker's), and items and bytes (mlc_namespace_info).  The hits of
-- resty.mlc's Lua L1 are not there (mlc counts its own L1's): each
-- worker's are in its cache:stats().
function _M.namespace_stats(shm, name)
    local a = ARENAS[shm]
    if not a then
        return nil, "no such mlc arena: " .. tostring(shm)
    end
    if type(name) ~= "string" then
        error("name must be a string", 2)
    end
    if not c_name(name) then
        local _, err = nul_name(name)
        return nil, err
    end
    local st = ffi_new("struct mlc_stats")
    st.size = ffi_sizeof(st)
    local rc = C.mlc_namespace_stats(a, name, st)
    if rc ~= 0 then
        return nil, strerror(rc)
    end
    local t = stats_table(st)
    local ni = ffi_new("struct mlc_namespace_info")
    ni.size = ffi_sizeof(ni)
    if C.mlc_namespace_info(a, name, ni) == 0 then
        t.items = tonumber(ni.items)
        t.bytes = tonumber(ni.bytes)
        t.purges = tonumber(ni.purges)
    end
    return t
end


function _M.lib_version()
    lib()
    return ffi_string(C.mlc_version_string())
end


-- ------------------------------------------------------------------ --
-- L1: one per arena handle and instance name per Lua VM (instances of one
-- name share it, as in lua-resty-mlcache; see L1S), indexed by the key
-- itself, as resty.lrucache is: a hit is one table lookup and an expiry
-- check, with no FFI call but ngx.now(), no hashing and at most one store.
--
-- Slots 1..size hold entries in parallel arrays: keys, vals (the Lua
-- object, NIL for a cached nil), vers (the L2 version it was made from; 0:
-- not from L2), hks (the key's mlc hash index), and in FFI arrays exp
-- (ngx.now() expiry, 0 = never) and ref.  Eviction is CLOCK (second
-- chance), an approximation of LRU: a hit sets the slot's ref bit; when a
-- full L1 needs a slot, the hand sweeps the slots, clearing set bits, and
-- takes the first slot whose bit is clear (not read since the hand last
-- passed).  A new entry starts with its bit clear.
--
-- byhash maps a hash index to its key: mlc's log names changed keys by
-- hash (mlc_update_records), each with the version the change made, and
-- an entry made from that version or a later one stays.  Two keys of one
-- hash index (52 bits) cannot both be in L1: the second is not cached in
-- L1.
--
-- With opts.lru (a user LRU object: get, set, delete, flush_all) entries
-- are { value, version, hash index } tables in it, and byhash is bounded
-- by dropping the keys the user's LRU no longer holds (byhash_prune).

-- A cached nil.  Not a table: comparing a table with a table that has a
-- metatable consults __eq, which reads the value's header (a cache miss
-- per L1 hit on a large L1 of tables).
local NIL = newproxy(true)
getmetatable(NIL).__tostring = function() return "<nil>" end

local l1_mt = {}
l1_mt.__index = l1_mt

-- The L1s of this VM: by arena handle (the cdata ARENAS holds), then by
-- name.  By the handle, not the arena's name: after mlc.unlink(A) and a new
-- mlc.arena(A), the name is another arena, and an L1 reads the log of its
-- own arena (through its reader handle's cursor).  An instance keeps its
-- L1 itself; these only find it for the next instance.
local L1S = setmetatable({}, { __mode = "k" })

-- The L1 index of a hash: its low 52 bits, a number that both the
-- interpreter and compiled code convert exactly.  (LuaJIT's JIT converts a
-- uint64_t >= 2^63 to a double with double rounding, so tonumber() of the
-- full hash can differ by one ulp between interpreted and compiled code.)
local HASH_MASK = 0xFFFFFFFFFFFFFULL

local function hash_index(h)
    return tonumber(band(h, HASH_MASK))
end


-- exp and ref of a slot side by side: one array, one cache line per hit
if not pcall(ffi.typeof, "struct resty_mlc_slot") then
    ffi.cdef "struct resty_mlc_slot { double exp; uint32_t ref; };"
end
local slot_arr = ffi.typeof("struct resty_mlc_slot[?]")


local function l1_new(size, custom)
    size = floor(size)
    if size < 1 then
        size = 1
    end
    local l1 = {
        size = size, gen = 0, byhash = {}, custom = custom,
    }
    if not custom then
        l1.map = {}
        l1.keys, l1.vals, l1.vers, l1.hks = {}, {}, {}, {}
        l1.slot = slot_arr(size + 1)
        l1.used = 0
        l1.hand = 1
        l1.free = {}
        l1.nfree = 0
    else
        l1.nhash = 0
        l1.hbound = 4 * size + 64
    end
    return setmetatable(l1, l1_mt)
end


local function slot_free(l1, i)
    l1.map[l1.keys[i]] = nil
    l1.byhash[l1.hks[i]] = nil
    l1.keys[i] = false
    l1.vals[i] = false
    local nf = l1.nfree + 1
    l1.free[nf] = i
    l1.nfree = nf
end


-- The hot path: value (NIL for a cached nil) or nil.
local function l1_get(l1, key)
    local map = l1.map
    if not map then
        local e = l1.custom:get(key)
        if e then
            return e[1]
        end
        return nil
    end

    local i = map[key]
    if not i then
        return nil
    end

    local sl = l1.slot[i]
    local e = sl.exp
    if e ~= 0 and e < now() then
        slot_free(l1, i)
        return nil
    end

    sl.ref = 1              -- no branch: a trace recorded on either
    return l1.vals[i]       -- side would exit on the other
end


local function l1_remove(l1, key)
    if not l1.map then
        local e = l1.custom:get(key)
        if e then
            l1.byhash[e[3]] = nil
        end
        l1.custom:delete(key)
        return
    end
    local i = l1.map[key]
    if i then
        slot_free(l1, i)
    end
end


local function l1_flush(l1)
    l1.gen = l1.gen + 1
    l1.byhash = {}
    if not l1.map then
        l1.nhash = 0
        l1.custom:flush_all()
        return
    end
    l1.map = {}
    l1.keys, l1.vals, l1.vers, l1.hks = {}, {}, {}, {}
    l1.used = 0
    l1.hand = 1
    l1.free = {}
    l1.nfree = 0
end


-- A slot for a new entry: a free one, else the CLOCK hand's victim.
local function slot_take(l1)
    local nf = l1.nfree
    if nf > 0 then
        local i = l1.free[nf]
        l1.free[nf] = nil
        l1.nfree = nf - 1
        return i
    end
    if l1.used < l1.size then
        local i = l1.used + 1
        l1.used = i
        return i
    end
    -- full, so every slot is live: at most one lap clears every bit
    local slot, size, i = l1.slot, l1.size, l1.hand
    while slot[i].ref ~= 0 do
        slot[i].ref = 0
        i = i < size and i + 1 or 1
    end
    l1.hand = i < size and i + 1 or 1
    l1.map[l1.keys[i]] = nil
    l1.byhash[l1.hks[i]] = nil
    return i
end


-- With opts.lru: byhash outgrew its bound (the user's LRU drops keys
-- without telling).  Keep the hashes of the keys the user's LRU still
-- holds, read with its get_keys() when it has one (resty.lrucache: no
-- reordering), else with get() (which moves each to the front), and bound
-- byhash again at twice as many.  Never by emptying the user's LRU: it may
-- hold far more than lru_size (which mlcache ignores with opts.lru).
local function byhash_prune(l1)
    local custom = l1.custom
    local live
    if type(custom.get_keys) == "function" then
        live = {}
        for _, k in ipairs(custom:get_keys(0)) do
            live[k] = true
        end
    end
    local byhash, n = {}, 0
    for hk, key in next, l1.byhash do
        local keep
        if live then
            keep = live[key]
        else
            keep = custom:get(key) ~= nil
        end
        if keep then
            byhash[hk] = key
            n = n + 1
        end
    end
    l1.byhash = byhash
    l1.nhash = n
    l1.hbound = math.max(4 * l1.size + 64, 2 * n)
end


-- Put @key: @value (NIL for nil) made from L2 @version (0: not in L2),
-- expiring at @expire (ngx.now() seconds, 0 = never); @hk its hash index.
local function l1_put(l1, hk, key, value, expire, version)
    local byhash = l1.byhash
    local other = byhash[hk]
    if other ~= nil and other ~= key then
        return              -- a hash index collision: not in L1
    end

    if not l1.map then
        if other == nil then
            local nh = l1.nhash + 1
            if nh > l1.hbound then
                byhash_prune(l1)
                byhash = l1.byhash
                nh = l1.nhash + 1
            end
            l1.nhash = nh
        end
        local ttl
        if expire ~= 0 then
            ttl = expire - now()
            if ttl <= 0 then
                return
            end
        end
        byhash[hk] = key
        l1.custom:set(key, { value, version, hk }, ttl)
        return
    end

    local map = l1.map
    local i = map[key]
    if not i then
        i = slot_take(l1)
        map[key] = i
        l1.keys[i] = key
        l1.hks[i] = hk
        byhash[hk] = key
        l1.slot[i].ref = 0
    end
    l1.vals[i] = value
    l1.vers[i] = version
    l1.slot[i].exp = expire
end


-- A change to the key of hash index @hk made L2 version @version: drop
-- its entry unless made from that version or a later one.
local function l1_drop(l1, hk, version)
    local key = l1.byhash[hk]
    if key == nil then
        return
    end
    if not l1.map then
        local e = l1.custom:get(key)
        if not e or e[2] < version then
            l1.byhash[hk] = nil
            l1.custom:delete(key)
        end
        return
    end
    local i = l1.map[key]
    if i and l1.vers[i] < version then
        slot_free(l1, i)
    end
end


-- Written out at each call site rather than called: LuaJIT blacklists a
-- small hot function whose own root traces keep aborting, and then every
-- trace that reaches it (an L2 hit, a set) runs interpreted.
--   tonumber(band(C.mlc_key_hash(h, key, #key), HASH_MASK))


-- The mlcache-like view of L1 by key (cache.lru): get, set, delete,
-- flush_all.  Its set() does not write L2 (version 0: the first change to
-- the key anywhere drops it).
function l1_mt:get(key)
    local v = l1_get(self, key)
    if v == NIL then
        return nil
    end
    return v
end


function l1_mt:set(key, value, ttl)
    self.gen = self.gen + 1
    local hk = tonumber(band(C.mlc_key_hash(self.h, key, #key), HASH_MASK))
    l1_put(self, hk, key, value == nil and NIL or value,
           ttl and ttl > 0 and now() + ttl or 0, 0)
end


function l1_mt:delete(key)
    self.gen = self.gen + 1
    l1_remove(self, key)
end


function l1_mt:flush_all()
    l1_flush(self)
end


-- Apply the invalidation log: drop the L1 entries of the keys changed
-- since the last call (keeping those already at the changed version).
-- REC_CAP records a call, until the cursor meets the head or stops (a
-- record still being published: the next get comes back for it).
--
-- The loops are in functions of their own, reached only when more than one
-- record came: LuaJIT gives up on a trace that starts at a function and
-- meets a loop, and after a few such tries blacklists the function, and
-- with it every trace that calls it (every get after a write elsewhere).
local poll

local function drop_records(l1, recs, n)
    for i = 0, n - 1 do
        local r = recs[i]
        l1_drop(l1, tonumber(band(r.hash, HASH_MASK)), tonumber(r.version))
    end
end


local function poll_once(l1)
    local recs, fbuf = l1.recs, l1.fbuf
    local before = l1.cur
    local rc = C.mlc_update_records(l1.h, recs, REC_CAP, l1.nbuf, fbuf)
    l1.gen = l1.gen + 1
    if rc ~= 0 or fbuf[0] ~= 0 then
        l1_flush(l1)
    else
        local n = l1.n32[0]
        if n == 1 then
            local r = recs[0]
            l1_drop(l1, tonumber(band(r.hash, HASH_MASK)),
                    tonumber(r.version))
        elseif n > 1 then
            drop_records(l1, recs, n)
        end
    end
    local cur = tonumber(l1.cu[0])
    l1.cur = cur
    -- more to read: only after REC_CAP records at once
    return rc == 0 and cur ~= before and tonumber(l1.hd[0]) ~= cur
end


local function poll_rest(l1)
    while poll_once(l1) do        -- luacheck: ignore
    end
end


-- poll(l1): an L1 reads the log through one handle, its reader (that of
-- the instance that made it): instances of one name (on one arena handle)
-- share the L1 and so its reading position, however many there are and
-- whenever they came.
poll = function(l1)
    if poll_once(l1) then
        poll_rest(l1)
    end
end


-- ------------------------------------------------------------------ --
-- Options

-- opts[f]: nil, or a number >= min (written "not (x >= min)" so that NaN
-- is refused too).  @level is the caller's, as error()'s.
local function check_at_least(opts, f, min, level)
    local x = opts[f]
    if x ~= nil then
        if type(x) ~= "number" then
            error("opts." .. f .. " must be a number", level + 1)
        end
        if not (x >= min) then
            error("opts." .. f .. " must be >= " .. min, level + 1)
        end
    end
    return x
end


local function check_lock_opts(lo, where, level)
    for _, f in ipairs { "timeout", "exptime", "step", "ratio", "max_step" } do
        local x = lo[f]
        if x ~= nil and (type(x) ~= "number" or not (x >= 0)) then
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


-- Per-call options of get()/set(): a table of the resolved values.  The
-- bounds are written "not (x >= 0)" here and in new()'s checks, so that
-- NaN is refused too (x < 0 is false for it).
local function check_opts(self, opts)
    if opts == nil then
        return self.defaults
    end

    if type(opts) ~= "table" then
        error("opts must be a table", 3)
    end

    local ttl = check_at_least(opts, "ttl", 0, 3)
    local neg_ttl = check_at_least(opts, "neg_ttl", 0, 3)
    local resurrect_ttl = check_at_least(opts, "resurrect_ttl", 0, 3)

    local l1_serializer = opts.l1_serializer
    if l1_serializer ~= nil and type(l1_serializer) ~= "function" then
        error("opts.l1_serializer must be a function", 3)
    end

    local shm_set_tries = check_at_least(opts, "shm_set_tries", 1, 3)

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

-- A name given for opts.shm_miss, opts.shm_locks or opts.ipc_shm: a
-- lua_shared_dict (so that lua-resty-mlcache's nginx.conf keeps working)
-- or an mlc arena this VM has opened.
local function shm_exists(name)
    local shared = ngx.shared
    return (shared and shared[name] ~= nil) or ARENAS[name] ~= nil
end


local function check_new_opts(opts)
    local lru_size = opts.lru_size
    if lru_size ~= nil then
        if type(lru_size) ~= "number" then
            error("opts.lru_size must be a number", 3)
        end
        -- NaN and inf reached the L1's FFI array, which threw "bad
        -- argument #1 to 'slot_arr'" after the handle was opened
        if not (lru_size < math.huge) then
            error("opts.lru_size must be a finite number", 3)
        end
    end

    for _, f in ipairs { "ttl", "neg_ttl", "resurrect_ttl" } do
        check_at_least(opts, f, 0, 3)
    end

    if opts.resty_lock_opts ~= nil then
        if type(opts.resty_lock_opts) ~= "table" then
            error("opts.resty_lock_opts must be a table", 3)
        end
        check_lock_opts(opts.resty_lock_opts, "opts.resty_lock_opts", 3)
    end

    if opts.ipc_shm ~= nil and type(opts.ipc_shm) ~= "string" then
        error("opts.ipc_shm must be a string", 3)
    end

    if opts.ipc ~= nil then
        if opts.ipc_shm then
            error("cannot specify both of opts.ipc_shm and opts.ipc", 3)
        end

        if type(opts.ipc) ~= "table" then
            error("opts.ipc must be a table", 3)
        end

        if type(opts.ipc.register_listeners) ~= "function" then
            error("opts.ipc.register_listeners must be a function", 3)
        end

        if type(opts.ipc.broadcast) ~= "function" then
            error("opts.ipc.broadcast must be a function", 3)
        end

        if opts.ipc.poll ~= nil and type(opts.ipc.poll) ~= "function" then
            error("opts.ipc.poll must be a function", 3)
        end
    end

    if opts.l1_serializer ~= nil
       and type(opts.l1_serializer) ~= "function"
    then
        error("opts.l1_serializer must be a function", 3)
    end

    check_at_least(opts, "shm_set_tries", 1, 3)

    if opts.shm_miss ~= nil and type(opts.shm_miss) ~= "string" then
        error("opts.shm_miss must be a string", 3)
    end

    if opts.shm_locks ~= nil and type(opts.shm_locks) ~= "string" then
        error("opts.shm_locks must be a string", 3)
    end

    if opts.lru ~= nil and type(opts.lru) ~= "table" then
        error("opts.lru must be a table", 3)
    end
end


-- The instance's custom IPC, driven as lua-resty-mlcache drives it:
-- register_listeners() once with the two channels of this name, broadcast()
-- on every set/delete/purge, poll(timeout) on update(timeout).  The
-- handlers act on this worker's L1, as mlcache's do; mlc's own log still
-- carries every change to the other workers of this host.
local function setup_ipc(self, ipc)
    local name = self.name
    local events = {
        invalidation = {
            channel = "mlcache:invalidations:" .. name,
            handler = function(key)
                l1_remove(self.l1, key)
                self.l1.gen = self.l1.gen + 1
            end,
        },
        purge = {
            channel = "mlcache:purge:" .. name,
            handler = function()
                l1_flush(self.l1)
            end,
        },
    }
    local _, err = ipc.register_listeners(events)
    if err then
        return nil, "failed to initialize custom IPC "
                    .. "(opts.ipc.register_listeners returned an error): "
                    .. tostring(err)
    end
    self.events = events
    self.broadcast = ipc.broadcast
    self.ipc_poll = ipc.poll
    return true
end


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
        check_new_opts(opts)
    else
        opts = {}
    end

    lib()

    -- as mlc's own refusals of a name (empty, too long): nil, err
    if not c_name(shm) then
        local shown, err = nul_name(shm)
        return nil, "could not attach mlc arena '" .. shown .. "': " .. err
    end
    if not c_name(name) then
        local shown, err = nul_name(name)
        return nil, "could not open mlc cache '" .. shown .. "' in arena '"
                    .. shm .. "': " .. err
    end

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

    -- lua-resty-mlcache's checks and messages
    if opts.shm_miss and not shm_exists(opts.shm_miss) then
        return nil, "no such lua_shared_dict for opts.shm_miss: "
                    .. opts.shm_miss
    end
    if opts.shm_locks and not shm_exists(opts.shm_locks) then
        return nil, "no such lua_shared_dict for opts.shm_locks: "
                    .. opts.shm_locks
    end
    if opts.ipc_shm and not shm_exists(opts.ipc_shm) then
        return nil, "failed to initialize mlcache IPC (could not "
                    .. "instantiate mlcache.ipc): no such lua_shared_dict: "
                    .. opts.ipc_shm
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
    -- exptime 0: a lock that never expires, as lua-resty-lock's (a shdict
    -- entry of exptime 0): the longest lease, 2^31 ms (24.8 days).  A
    -- dead owner's flight is still taken over once a waiter finds it dead.
    if lock.exptime == 0 then
        co.lock_lease_ms = 2^31
    else
        co.lock_lease_ms = min(math.max(ceil(lock.exptime * 1000), 1), 2^31)
    end

    local pp = ffi_new("struct mlc_cache *[1]")
    local rc = C.mlc_cache_open(pp, arena, name, co)
    if rc ~= 0 then
        return nil, "could not open mlc cache '" .. name .. "' in arena '"
                    .. shm .. "': " .. strerror(rc)
    end
    -- closed only with the VM (vm_close): L1s and tickets refer to it
    local h = pp[0]
    opened(OPENED_CACHES, h)

    -- one L1 per (arena handle, name) in this VM
    local l1s = L1S[arena]
    if not l1s then
        l1s = setmetatable({}, { __mode = "v" })
        L1S[arena] = l1s
    end
    local l1 = l1s[name]
    if not l1 or (opts.lru and l1.custom ~= opts.lru) then
        local hp = ffi_new("const volatile uint64_t *[1]")
        local cp = ffi_new("const uint64_t *[1]")
        rc = C.mlc_update_watch(h, hp, cp)
        if rc ~= 0 then
            return nil, "could not watch the mlc log: " .. strerror(rc)
        end
        l1 = l1_new(opts.lru_size or 100, opts.lru)
        -- The L1's log reader: this handle.  The log head and the
        -- handle's cursor (as a number, cur): while equal, nothing is
        -- pending (see mlc_update_watch).
        l1.h = h
        l1.hd = ffi_cast("const volatile int64_t *", hp[0])
        l1.cu = ffi_cast("const volatile int64_t *", cp[0])
        l1.cur = tonumber(l1.cu[0])
        l1.recs = ffi_new("struct mlc_update_record[?]", REC_CAP)
        l1.nbuf = ffi_new("size_t[1]")
        l1.n32 = ffi_cast("uint32_t *", l1.nbuf) + N32_OFF
        l1.fbuf = ffi_new("uint32_t[1]")
        l1.keep = { hp, cp }
        l1s[name] = l1
    end

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
        cnt      = { 0, 0, 0, 0 },      -- misses (-1), L2, L3, stale (4)
        val      = ffi_new(value_t),
        copts    = ffi_new(callopts_t),
        _keep    = {},
    }
    self.copts.size = ffi_sizeof(callopts_t)
    -- get in the instance itself: cache:get finds it at once, without a
    -- failed lookup in the instance and a second one in the metatable
    self.get = _M.get
    self.defaults = {
        ttl           = ttl,
        neg_ttl       = neg_ttl,
        resurrect_ttl = opts.resurrect_ttl,
        l1_serializer = opts.l1_serializer,
        shm_set_tries = self.shm_set_tries,
        lock          = lock,
    }

    if opts.ipc then
        local ok, err = setup_ipc(self, opts.ipc)
        if not ok then
            return nil, err
        end
    end

    return setmetatable(self, mt)
end


--- cache:stats(): this instance's counters in this worker.  The answers
-- by level are counted here: hits_l1, hits_l2, hits_l3 (the callback's
-- value), stale_served (hit level 4), misses (-1, no callback): L1 hits
-- are not counted (a count costs an L1 hit a tenth of its time); the rest
-- are mlc's for its handle (sets, deletes, purges, lock_waits,
-- lock_timeouts, fenced_writes, log_applied, ...: struct mlc_stats).
-- l1_items: entries in this worker's L1 (nil with opts.lru).
function _M:stats()
    local st = ffi_new("struct mlc_stats")
    st.size = ffi_sizeof(st)
    local rc = C.mlc_stats(self.h, st)
    if rc ~= 0 then
        return nil, strerror(rc)
    end
    local t = stats_table(st)
    local cnt = self.cnt
    t.hits_l1 = nil
    t.hits_l2 = cnt[2]
    t.hits_l3 = cnt[3]
    t.stale_served = cnt[4]
    t.misses = cnt[1]
    local l1 = self.l1
    t.l1_items = l1.map and (l1.used - l1.nfree) or nil
    return t
end


-- ------------------------------------------------------------------ --
-- Lookups

-- The phases (ngx.get_phase()) where ngx.sleep() may be called.
local YIELDABLE = {
    rewrite = true, server_rewrite = true, access = true, content = true,
    timer = true, ssl_cert = true, ssl_session_fetch = true,
    ssl_client_hello = true, preread = true,
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


-- mlc ms for a TTL in seconds: positive entries get L2_MARGIN_MS more
-- (their own expiry decides), negative ones exactly their TTL.
local function l2_ms(ttl, neg)
    local ms = ttl_ms(ttl)
    if ms ~= MLC_TTL_NEVER and not neg then
        ms = ms + L2_MARGIN_MS
    end
    return ms
end


-- Put what L2 (or a load) gave into L1 and return it the mlcache way.
-- value: decoded (nil for a negative); expire: ngx.now() expiry (0 =
-- never); version 0 = not in L2.  No L1 insert when insert == false, or
-- when the L1 saw an invalidation while the l1_serializer ran (it may
-- yield).
local function l1_fill(self, key, hk, value, expire, version, lvl, ser,
                       insert)
    local l1 = self.l1
    if lvl then
        local cnt = self.cnt
        cnt[lvl] = cnt[lvl] + 1
    end
    if value == nil then
        if insert then
            l1_put(l1, hk, key, NIL, expire, version)
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
        l1_put(l1, hk, key, value, expire, version)
    end

    return value, nil, lvl
end


-- The ngx.now() expiry of a filled value struct.
local function value_expiry(vv)
    if band(vv.flags, MLC_NEGATIVE) ~= 0 then
        if band(vv.flags, MLC_NO_EXPIRY) ~= 0 then
            return 0
        end
        return now() + tonumber(vv.ttl_ms) / 1000
    end
    if vv.len < HDR then
        return 0
    end
    return bytes_expiry(ffi_cast(u8p, vv.data))
end


-- Read the filled value struct: value, resurrected, expire, version,
-- flags, err (then released).
local function take_value(v)
    local vv = v[0]
    local flags = vv.flags
    local expire = value_expiry(vv)
    local version = tonumber(vv.version)
    local value, stale, err
    if band(flags, MLC_NEGATIVE) == 0 then
        value, stale, err = decode(vv.data, tonumber(vv.len))
    else
        stale = false
    end
    C.mlc_value_release(v)
    return value, stale, expire, version, flags, err
end


local L2_MISS, L2_FRESH, L2_EXPIRED, L2_ERR = 0, 1, 2, 3

-- What get(), get_bulk(), set(), delete() and peek() answer for a key mlc
-- does not take (its own "invalid argument" or "key or value over the
-- limit" would say less).
local KEY_ERR = "invalid key: keys are 1 to 65535 bytes long"


-- L2 lookup.  Returns kind and:
--   L2_FRESH:   value, resurrected, expire, version
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
    local neg = band(vv.flags, MLC_NEGATIVE) ~= 0
    local expired = band(vv.flags, MLC_STALE) ~= 0 and vv.ttl_ms == 0
    if not expired and not neg then
        local e = value_expiry(vv)
        expired = e ~= 0 and e < now()
    end
    if expired then
        if not stale_ok then
            C.mlc_value_release(v)
            return L2_MISS
        end
        -- keep its bytes for resurrection or lock timeouts
        local st = { neg = neg }
        if not neg then
            st.bytes = ffi_string(vv.data, vv.len)
        end
        C.mlc_value_release(v)
        return L2_EXPIRED, st
    end

    local value, stale, expire, version, _, err = take_value(v)
    if err then
        return L2_ERR, "could not deserialize value after mlc retrieval: "
                       .. err
    end
    return L2_FRESH, value, stale, expire, version
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
    self.cnt[4] = self.cnt[4] + 1
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


-- Store bytes (ptr/len, or nil + neg for a negative) in L2 with mlc_set,
-- for @ttl seconds, and learn the version it got.  Returns the version
-- (false if unknown: another write came right after ours), or nil, err.
-- Nothing may yield between the encode() that made @p and this.
local function l2_set(self, key, p, len, neg, ttl, tries)
    local co = self.copts
    local ms = l2_ms(ttl, neg)
    co.flags = neg and MLC_CALL_NEGATIVE or 0
    co.ttl_ms = ms
    co.neg_ttl_ms = ms

    local h = self.h
    len = p and len or 0
    local rc
    for _ = 1, tries or 1 do
        rc = C.mlc_set(h, key, #key, p, len, co)
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
        return false
    end
    local vv = v[0]
    local same
    if neg then
        same = band(vv.flags, MLC_NEGATIVE) ~= 0
    else
        same = band(vv.flags, MLC_NEGATIVE) == 0 and vv.len == len
               and ffi.C.memcmp(vv.data, p, len) == 0
    end
    local version = same and tonumber(vv.version) or false
    C.mlc_value_release(v)
    return version
end


-- A ticket: mlc's flight, the handle, and a copy of the key (the C side
-- refers to the key's bytes until the flight ends).  A flight left open
-- (the request's coroutine was killed) is given up when its ticket is
-- collected.  One shared finalizer, no closure: LuaJIT does not compile
-- the creation of a closure, and would blacklist the miss path for it.
if not pcall(ffi.typeof, "struct resty_mlc_ticket") then
    ffi.cdef [[
struct resty_mlc_ticket {
    struct mlc_flight f;
    struct mlc_cache *h;
    char key[?];
};
]]
end
local ticket_t = ffi.typeof("struct resty_mlc_ticket")


local function ticket_gc(t)
    if t.f.role ~= MLC_FLIGHT_NONE and not vm_closed then
        C.mlc_flight_abandon(t.h, t.f)
    end
end


local function new_ticket(h, key)
    local n = #key
    local tk = ffi_gc(ffi_new(ticket_t, n), ticket_gc)
    tk.h = h
    ffi_copy(tk.key, key, n)
    return tk
end


local function end_ticket(self, tk)
    if tk.f.role ~= MLC_FLIGHT_NONE then
        C.mlc_flight_abandon(self.h, tk.f)
    end
end


local function publish_error(self, tk, msg)
    local ld = ffi_new(load_t)
    local n = min(#msg, 159)
    ffi_copy(ld.errmsg, msg, n)
    C.mlc_flight_publish(self.h, tk.f, EIO, ld, nil)
end


-- The callback returned nil, err with a stale value at hand and
-- resurrect_ttl set: store the stale value again, mlcache's way, as the
-- flight's outcome (mlc_flight_publish), so that mlc fences it as it
-- fences a load: after a set, delete or purge of the key since this call
-- took the flight (and read the stale value), the value is stored nowhere
-- and not served (it was replaced, or must never be served again): this
-- call answers what L2 holds now, else the callback's error.  The
-- waiters get the resurrected value (hit level 4), as mlcache's read it
-- from the dict.  A stale value that does not decode (not written by
-- resty.mlc: too short, an unknown tag) is not stored again: the error is
-- published (the waiters answer as this call does) and the deserialize
-- error returned.
local function resurrect(self, key, hk, o, stale, tk, err)
    local value, derr = stale_value(stale)
    if derr then
        publish_error(self, tk, err)
        return nil, "could not deserialize value after mlc retrieval: "
                    .. derr
    end

    ngx_log(WARN, "callback returned an error (", err, ") but stale ",
            "value found in mlc arena will be resurrected for ",
            o.resurrect_ttl, "s (resurrect_ttl)")

    local expire = expiry_of(o.resurrect_ttl)
    local bytes = stale.neg and ("z" .. expiry_bytes(expire))
                  or restale(stale.bytes, expire)
    local ld = ffi_new(load_t)
    ld.data = bytes
    ld.len = #bytes
    ld.ttl_ms = l2_ms(o.resurrect_ttl, false)
    local v = self.val
    local keep = self._keep
    keep[3] = bytes             -- ld.data points into it
    local rc = C.mlc_flight_publish(self.h, tk.f, MLC_LOAD_VALUE, ld, v)
    keep[3] = nil
    if rc ~= 0 then
        ngx_log(WARN, "could not resurrect stale data (",
                ffi_string(C.mlc_last_error(self.h)), ")")
        return l1_fill(self, key, hk, value, expire, 0, 4, o.l1_serializer,
                       false)
    end

    local vv = v[0]
    local flags = vv.flags
    local version = tonumber(vv.version)
    C.mlc_value_release(v)

    if band(flags, MLC_NOT_CACHED) ~= 0 then
        -- fenced: the key changed while the callback ran
        local kind, a, b, c, d = l2_lookup(self, key, false)
        if kind == L2_FRESH then
            return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                           o.l1_serializer, true)
        end
        return nil, err
    end

    local insert = true
    if band(flags, MLC_L2_WRITE_FAILED) ~= 0 then
        ngx_log(WARN, "could not resurrect stale data (no room, or value ",
                "larger than a page)")
        insert = false
    end

    return l1_fill(self, key, hk, value, expire, version, 4,
                   o.l1_serializer, insert)
end


-- run_loader()'s first return value for "throw the second to get()'s
-- caller" (an uncacheable type, as mlcache throws), once the flight is
-- given up.
local THROW = {}


-- This worker runs the callback (it holds the key's flight).  The stale
-- value, for a resurrection, is read here, once changes to the key fence
-- this flight's outcome: one read before the flight may have been
-- deleted or purged since, unfenced.
local function run_loader(self, key, hk, o, tk, cb, ...)
    -- another worker may have stored it just before we got the flight
    local kind, a, b, c, d = l2_lookup(self, key, true)
    if kind == L2_FRESH then
        end_ticket(self, tk)
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end
    if kind == L2_ERR then
        end_ticket(self, tk)
        return nil, a
    end
    local stale = kind == L2_EXPIRED and a or nil

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
        return resurrect(self, key, hk, o, stale, tk, err)
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

    local expire = expiry_of(ttl)
    local ld = ffi_new(load_t)
    local result, p, len
    if data == nil then
        result = MLC_LOAD_NOTFOUND

    else
        local eerr, terr
        p, len, terr = encode(data, expire)
        if not p then
            -- nothing for the waiters: the next in line runs its callback
            end_ticket(self, tk)
            if no_cache then
                return data, nil, 3     -- mlcache never encodes a bypass
            end
            if terr then
                return THROW, terr      -- get_l3 throws it
            end
            eerr = len
            return nil, eerr
        end
        ld.data = p
        ld.len = len
        result = MLC_LOAD_VALUE
    end
    ld.ttl_ms = l2_ms(ttl, data == nil)
    if no_cache then
        ld.flags = MLC_LOAD_NO_CACHE
    end

    local v = self.val
    local keep = self._keep
    keep[3] = p                 -- ld.data points into it
    local rc = C.mlc_flight_publish(self.h, tk.f, result, ld, v)
    keep[3] = nil
    if rc ~= 0 then
        return nil, "could not store the callback's value: "
                    .. ffi_string(C.mlc_last_error(self.h))
    end

    local vv = v[0]
    local flags = vv.flags
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
    end

    return l1_fill(self, key, hk, data, expire, version, 3, o.l1_serializer,
                   insert)
end


-- After a lock timeout: look in L2 once more, else the stale value it
-- holds now, else the error.  Not the stale value read before the wait:
-- the key may have been deleted or purged since (purged values are never
-- served again).
local function lock_timed_out(self, key, hk, o)
    local kind, a, b, c, d = l2_lookup(self, key, true)
    if kind == L2_FRESH then
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end
    local stale = kind == L2_EXPIRED and a or nil

    local errmsg = "could not acquire callback lock: timeout"
    if not stale or not o.resurrect_ttl then
        return nil, errmsg
    end

    ngx_log(WARN, errmsg)
    return serve_stale(self, stale, o.l1_serializer)
end


-- What follows mlc_flight_acquire(): wait for the loader, or load.  Runs
-- in get_l3()'s pcall: whatever it throws, the flight is given up first.
local function in_flight(self, key, hk, o, tk, cb, ...)
    local h = self.h
    local rc
    if tk.f.role == MLC_FLIGHT_WAITER then
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
            rc = C.mlc_flight_wait(h, tk.f, 0, v)
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
                return lock_timed_out(self, key, hk, o)
            end

            local s = step
            if elapsed + s > timeout then
                s = timeout - elapsed
            end
            sleep(s)
            slept = slept + s

            -- never under 1 ms, whatever ratio and max_step say (as
            -- lua-resty-lock): ngx.sleep() of less takes 0 ms, and a loop
            -- of those spins in the event loop, which then runs no timer
            -- (nor the loader's ngx.sleep): the worker hangs
            step = step * lock.ratio
            if step > lock.max_step then
                step = lock.max_step
            end
            if step < 0.001 then
                step = 0.001
            end
        end

        if rc == 0 and tk.f.role ~= MLC_FLIGHT_LOADER then
            -- the loader's outcome, read from L2 (or its outcome record)
            local value, rstale, expire, version, flags, err = take_value(v)
            if err then
                return nil, "could not deserialize value after mlc "
                            .. "retrieval: " .. err
            end
            return l1_fill(self, key, hk, value, expire, version,
                           rstale and 4 or 2, o.l1_serializer,
                           band(flags, MLC_NOT_CACHED) == 0)
        end

        if rc == MLC_ELOADER then
            -- the loader's callback returned an error: the stale value L2
            -- holds now, if any (see lock_timed_out())
            local err = ffi_string(C.mlc_last_error(h))
            if o.resurrect_ttl then
                local kind, st = l2_lookup(self, key, true)
                if kind == L2_EXPIRED then
                    return serve_stale(self, st, o.l1_serializer)
                end
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

    return run_loader(self, key, hk, o, tk, cb, ...)
end


-- in_flight()'s outcome.  However get() leaves the flight, it leaves it
-- ended: a flight still held here (an error thrown while this call held it,
-- as loader or waiter, or a return that left it) would keep the key's slot
-- until its lease expires or the ticket is collected.  So it is given up
-- here, before anything is returned or thrown.  Called in a tail call from
-- get_l3() (itself reached by tail calls from get()), so level 2 is get()'s
-- caller.
local function flight_done(self, tk, ok, a, ...)
    end_ticket(self, tk)
    if ok then
        if rawequal(a, THROW) then
            error((...), 2)
        end
        return a, ...
    end
    error(a, 0)
end


-- L3: single flight across workers (and across this worker's requests).
local function get_l3(self, key, hk, o, cb, ...)
    local h = self.h
    local tk = new_ticket(h, key)
    local rc = C.mlc_flight_acquire(h, tk.key, #key, nil, tk.f)
    if rc ~= 0 then
        return nil, "could not acquire callback lock: "
                    .. ffi_string(C.mlc_last_error(h))
    end

    return flight_done(self, tk, pcall(in_flight, self, key, hk, o, tk, cb,
                                       ...))
end


-- Everything after an L1 miss.
local function get_l2_l3(self, key, o, cb, ...)
    local klen = #key
    if klen == 0 or klen > 65535 then
        return nil, KEY_ERR
    end
    local hk = tonumber(band(C.mlc_key_hash(self.h, key, klen),
                             HASH_MASK))

    -- An expired value is a miss here: the loader reads it again once
    -- it holds the flight (run_loader()), a waiter once it gave up.
    local kind, a, b, c, d = l2_lookup(self, key, false)
    if kind == L2_FRESH then
        return l1_fill(self, key, hk, a, c, d, b and 4 or 2,
                       o.l1_serializer, true)
    end
    if kind == L2_ERR then
        return nil, a
    end

    if cb == nil then
        self.cnt[1] = self.cnt[1] + 1
        return nil, nil, -1
    end

    return get_l3(self, key, hk, o, cb, ...)
end


function _M:get(key, opts, cb, ...)
    -- anything published since this handle's last look?  (One shared load:
    -- the log head, a 64-bit count exact as a number up to 2^53.)
    local l1 = self.l1
    if tonumber(l1.hd[0]) ~= l1.cur then
        poll(l1)
    end

    if cb ~= nil and type(cb) ~= "function" then
        error("callback must be nil or a function", 2)
    end

    -- L1 holds string keys only: anything else misses and is checked below
    local v = l1_get(l1, key)
    if v ~= nil then
        if v == NIL then
            return nil, nil, 1
        end
        return v, nil, 1
    end

    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    local o = check_opts(self, opts)
    return get_l2_l3(self, key, o, cb, ...)
end


-- peek(key, stale): remaining TTL (by ngx.now(), as lua-resty-mlcache:
-- the value's expiry minus now; 0 for a value that never expires), err,
-- value, went_stale.
function _M:peek(key, stale)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    if #key == 0 or #key > 65535 then
        return nil, KEY_ERR
    end

    local l1 = self.l1
    if tonumber(l1.hd[0]) ~= l1.cur then
        poll(l1)
    end

    local v = self.val
    local rc = C.mlc_peek(self.h, key, #key, MLC_CALL_STALE_OK, v)
    if rc == ENOENT then
        return nil
    end
    if rc ~= 0 then
        return nil, "could not read from mlc arena '" .. self.shm .. "': "
                    .. ffi_string(C.mlc_last_error(self.h))
    end

    local vv = v[0]
    local flags = vv.flags
    local mlc_expired = band(flags, MLC_STALE) ~= 0 and vv.ttl_ms == 0
    local remaining
    if band(flags, MLC_NEGATIVE) ~= 0 then
        if band(flags, MLC_NO_EXPIRY) ~= 0 then
            remaining = 0
        elseif mlc_expired then
            remaining = -0.001  -- mlc does not say since when
        else
            remaining = tonumber(vv.ttl_ms) / 1000
        end
    else
        local e = value_expiry(vv)
        if e == 0 then
            remaining = 0
        else
            -- in whole ms, as ngx.now() counts: no float noise of the
            -- expiry's magnitude (ttl 0.2 reads 0.2, not 0.20000005)
            remaining = floor((e - now()) * 1000 + 0.5) / 1000
            if remaining == 0 then
                remaining = 0.001       -- 0 means "never" (mlcache 2.7)
            end
        end
    end
    local went_stale = mlc_expired or remaining < 0
    if went_stale and not stale then
        C.mlc_value_release(v)
        return nil
    end

    local value, _, _, _, _, err = take_value(v)
    if err then
        return nil, "could not deserialize value after mlc retrieval: " .. err
    end

    return remaining, nil, value, went_stale
end


-- The custom IPC's broadcast, as lua-resty-mlcache calls it.
local function broadcast(self, channel, data, what)
    local _, err = self.broadcast(channel, data)
    if err then
        return nil, "could not broadcast " .. what .. ": " .. tostring(err)
    end
    return true
end


function _M:set(key, opts, value)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    local o = check_opts(self, opts)
    if #key == 0 or #key > 65535 then
        return nil, KEY_ERR
    end

    local ttl = value == nil and o.neg_ttl or o.ttl
    local expire = expiry_of(ttl)
    local p, len, terr
    if value ~= nil then
        p, len, terr = encode(value, expire)
        if not p then
            if terr then
                error(terr, 2)
            end
            return nil, len
        end
    end

    local version, err = l2_set(self, key, p, len, value == nil, ttl,
                                o.shm_set_tries)
    if version == nil then
        return nil, err
    end

    local l1 = self.l1
    l1.gen = l1.gen + 1
    if not version then
        -- another write came right after ours: L1 learns it from L2
        l1_remove(l1, key)
    else
        local _
        local hk = tonumber(band(C.mlc_key_hash(self.h, key, #key),
                                 HASH_MASK))
        _, err = l1_fill(self, key, hk, value, expire,
                         version, nil, o.l1_serializer, true)
        if err then
            return nil, err
        end
    end

    if self.broadcast then
        return broadcast(self, self.events.invalidation.channel, key,
                         "update")
    end
    return true
end


function _M:delete(key)
    if type(key) ~= "string" then
        error("key must be a string", 2)
    end

    if #key == 0 or #key > 65535 then
        return nil, KEY_ERR
    end

    local rc = C.mlc_delete(self.h, key, #key)
    if rc ~= 0 then
        return nil, "could not delete from mlc arena '" .. self.shm .. "': "
                    .. strerror(rc)
    end

    local l1 = self.l1
    l1.gen = l1.gen + 1
    l1_remove(l1, key)

    if self.broadcast then
        return broadcast(self, self.events.invalidation.channel, key,
                         "deletion")
    end
    return true
end


function _M:purge(flush_expired)     -- luacheck: ignore flush_expired
    local rc = C.mlc_purge(self.h)
    if rc ~= 0 then
        return nil, "could not purge mlc namespace '" .. self.name .. "': "
                    .. strerror(rc)
    end

    l1_flush(self.l1)

    if self.broadcast then
        return broadcast(self, self.events.purge.channel, "", "purge")
    end
    return true
end


-- update(timeout): apply mlc's log (at once, never sleeps), then, with a
-- custom IPC that has poll(), poll(timeout) as lua-resty-mlcache does.
function _M:update(timeout)
    poll(self.l1)
    if self.ipc_poll then
        local _, err = self.ipc_poll(timeout)
        if err then
            return nil, "could not poll ipc events: " .. tostring(err)
        end
    end
    return true
end


-- ------------------------------------------------------------------ --
-- get_bulk(bulk, opts), new_bulk(n), each_bulk_res(res)

local BULK_DEFAULT_CONCURRENCY = 3

local bulk_mt = {}
bulk_mt.__index = bulk_mt


function _M.new_bulk(n_ops)          -- luacheck: ignore n_ops
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
                                         t.cb, t.arg)
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

    poll(self.l1)

    local n_bulk = bulk.n * 4
    local res = { n = bulk.n * 3 }
    local res_idx = 1
    local tasks
    local n_tasks = 0
    local l1 = self.l1
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

        local value = l1_get(l1, b_key)
        if value ~= nil then
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

            local kind, a, b, c, d, hk
            if #b_key == 0 or #b_key > 65535 then
                kind, a = L2_ERR, KEY_ERR
            else
                hk = tonumber(band(C.mlc_key_hash(h, b_key, #b_key),
                                   HASH_MASK))
                -- expired: a miss, read again in the flight (get_l2_l3)
                kind, a, b, c, d = l2_lookup(self, b_key, false)
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
                    cb = b_cb, arg = bulk[i + 3],
                }
            end
        end

        res_idx = res_idx + 3
    end

    if n_tasks == 0 then
        return res
    end

    -- As lua-resty-mlcache: contiguous chunks of ceil(n / concurrency)
    -- callbacks, in bulk order; the first chunks in light threads spawned
    -- in order (each runs until its first yield), the last in this one.
    local chunk = ceil(n_tasks / concurrency)
    if chunk >= n_tasks or not YIELDABLE[get_phase()] then
        run_tasks(self, tasks, res, 1, n_tasks)
        return res
    end

    local threads = {}
    local from = 1
    while from + chunk <= n_tasks do
        local to = from + chunk - 1
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

    run_tasks(self, tasks, res, from, n_tasks)

    for i = 1, #threads do
        local ok, err = thread_wait(threads[i])
        if not ok then
            ngx_log(ERR, "failed to wait for thread number ", i, ": ", err)
        end
    end

    return res
end


-- For tests: the L1 index of a hash, and the enum values used here.
_M._hash_index = function(h)
    return hash_index(h)
end
_M._const = K

-- For tests and operators: this module's encoding helpers.
_M._encode = function(v, expire)
    local p, n, terr = encode(v, expire or 0)
    if not p then
        return nil, n or terr
    end
    return ffi_string(p, n)
end
_M._decode = function(s)
    return decode(s, #s)
end
-- The codec as the L2 paths use it, for the benchmark: decode(ptr, len)
-- of a value's bytes in memory (in place, as an L2 hit does), and
-- encode(value, expire) -> ptr, len (valid until the next encode).
_M._decode_at = decode
_M._encode_at = encode


return _M
