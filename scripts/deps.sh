#!/usr/bin/env bash
# Install the Debian packages mlc needs to build and test (idempotent).
set -euo pipefail
need=(meson ninja-build pkg-config gcc g++ libck-dev libxxhash-dev libcmocka-dev valgrind
	clang libclang-rt-14-dev)	# clang + its runtime: the fuzz/ harnesses
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Optional: mlc-relay (hiredis) and its end-to-end test (redis-server, ip
# netns).  Their absence only skips that part, so a failure is not fatal.
opt=(libhiredis-dev redis-server iproute2)
missing=()
for p in "${opt[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		echo "deps.sh: optional packages not installed (${missing[*]}): the relay is skipped" >&2
fi
# Optional: the OpenResty binding's test (lua/t/run.sh): nginx with its Lua
# module (which brings OpenResty's LuaJIT, libluajit2-5.1-2, in place of
# libluajit-5.1-2), lua-resty-core, lua-resty-lrucache and curl.  Without
# them that stage is skipped.
opt=(nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache curl)
missing=()
for p in "${opt[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		echo "deps.sh: optional packages not installed (${missing[*]}): the OpenResty binding's test is skipped" >&2
fi
# Optional: the end-to-end test of examples/ (examples/test-e2e.sh): nginx
# and nginx-dev (Debian's headers and configure flags for building dynamic
# modules), SQLite (libsqlite3-dev builds mlc-server; the sqlite3 CLI makes
# the test database), wrk and curl.  Without them that stage skips the part
# it cannot run.
opt=(nginx nginx-dev libsqlite3-dev sqlite3 wrk curl)
missing=()
for p in "${opt[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		echo "deps.sh: optional packages not installed (${missing[*]}): the examples' end-to-end test skips what needs them" >&2
fi
