#!/usr/bin/env bash
# Install the Debian packages mlc needs to build and test (idempotent).
set -euo pipefail
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
updated=0

# install WHAT PACKAGE...: apt-get the packages not installed yet.  WHAT is
# "required" (a failure stops the script) or the name of the part that is
# skipped without them (a failure is reported, not fatal).
install() {
	local what=$1 p missing=()
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	if [ "$what" = required ]; then
		[ $updated = 1 ] || $SUDO apt-get update -qq
		updated=1
		$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
		return
	fi
	{ { [ $updated = 1 ] || $SUDO apt-get update -qq; } && updated=1 &&
	  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		echo "deps.sh: optional packages not installed (${missing[*]}): $what is skipped" >&2
}

# The library, its tests, valgrind, and clang with its runtime for fuzz/.
install required meson ninja-build pkg-config gcc g++ libck-dev libxxhash-dev \
	libcmocka-dev valgrind clang libclang-rt-14-dev
# mlc-relay (hiredis) and its end-to-end test (redis-server, ip netns).
install "the relay test" libhiredis-dev redis-server iproute2
# The OpenResty binding's test (lua/t/run.sh): nginx with its Lua module
# (which brings OpenResty's LuaJIT, libluajit2-5.1-2, in place of
# libluajit-5.1-2), lua-resty-core, lua-resty-lrucache and curl.
install "the OpenResty binding's test" nginx libnginx-mod-http-lua \
	lua-resty-core lua-resty-lrucache curl
# examples/test-e2e.sh: nginx-dev (Debian's headers and configure flags for
# dynamic modules), SQLite (libsqlite3-dev builds mlc-server; the sqlite3
# CLI makes the test database), wrk and curl.
install "what the examples' end-to-end test needs" nginx nginx-dev \
	libsqlite3-dev sqlite3 wrk curl
