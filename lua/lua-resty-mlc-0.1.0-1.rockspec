-- The OpenResty binding of mlc, shipped on its own.  From this directory:
--   luarocks make lua-resty-mlc-0.1.0-1.rockspec
-- installs resty/mlc.lua (no fetching).  libmlc itself is installed from the
-- C library (meson install) and found at run time: see README.md.
package = "lua-resty-mlc"
version = "0.1.0-1"

-- No public repository yet: install from a checkout with `luarocks make`
-- (which does not fetch); a release puts the repository's URL here, with
-- dir = "<checkout>/lua".
source = {
   url = ".",
}

description = {
   summary = "lua-resty-mlcache's API on mlc, a multi-level cache in shared memory",
   detailed = [[
resty.mlc gives OpenResty the API of lua-resty-mlcache (new, get, get_bulk,
peek, set, delete, purge, update) with mlc as its shared level: a lock-free
shared-memory arena, single flight across workers, and an invalidation log
that keeps every worker's L1 coherent without update() calls.  It loads
libmlc with the LuaJIT FFI.
]],
   license = "MIT",
}

-- LuaJIT (its FFI) and lua-resty-lrucache are required; both come with
-- OpenResty (and with Debian's libnginx-mod-http-lua + lua-resty-lrucache).
dependencies = {
   "lua >= 5.1",
}

build = {
   type = "builtin",
   modules = {
      ["resty.mlc"] = "lib/resty/mlc.lua",
   },
}
