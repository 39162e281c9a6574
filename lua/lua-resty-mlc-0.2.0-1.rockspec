-- The OpenResty binding of mlc, shipped on its own.  From this directory:
--   luarocks make lua-resty-mlc-0.2.0-1.rockspec
-- installs resty/mlc.lua from the checkout (make does not fetch).  A source
-- rock for a release comes from pack.sh, which writes this rockspec with the
-- release's git URL and tag (the project has no public repository yet) and
-- runs `luarocks pack`.  libmlc itself is installed from the C library
-- (meson install) and found at run time: see README.md.
package = "lua-resty-mlc"
version = "0.2.0-1"

source = {
   url = "@URL@",
   tag = "@TAG@",
   dir = "@DIR@",
}

description = {
   summary = "lua-resty-mlcache's API on mlc, a multi-level cache in shared memory",
   detailed = [[
resty.mlc gives OpenResty the API of lua-resty-mlcache (new, get, get_bulk,
peek, set, delete, purge, update, custom IPC) with mlc as its shared level: a
lock-free shared-memory arena, single flight across workers, and an
invalidation log that keeps every worker's L1 coherent without update()
calls.  Its L1 hit costs what resty.lrucache:get costs.  It loads libmlc
with the LuaJIT FFI.
]],
   license = "MIT",
}

-- LuaJIT: the FFI, and string.buffer for tables (OpenResty's LuaJIT 2.1).
-- lua-resty-lrucache: opts.lru takes one of its instances, as in mlcache.
dependencies = {
   "luajit >= 2.1",
   "lua-resty-lrucache >= 0.09",
}

build = {
   type = "builtin",
   modules = {
      ["resty.mlc"] = "lib/resty/mlc.lua",
   },
}
