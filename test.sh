#!/usr/bin/env bash
# Set up everything (Debian packages) and run the whole test suite:
#   1. release-like build with -Werror, shared and static libraries, all tests
#   2. symbol and header checks
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build, all tests
#   4. ThreadSanitizer build, all tests
#   5. valgrind on the core tests
#   5a. libFuzzer: each fuzz/ harness for 60 s, and the kept reproducers
#       (skipped without clang's fuzzer runtime)
#   5b. mlc-relay end to end: three hosts in network namespaces and Redis
#       (skipped without root/netns, redis-server or hiredis)
#   5c. the OpenResty binding (lua/) in a real nginx with 4 workers
#       (skipped without nginx and its Lua module)
#   5d. examples/: the nginx module in Debian's nginx and mlc-server, 4
#       workers each, end to end with curl and a 3 s wrk run (the nginx
#       part skipped without nginx-dev); then examples/test-storm.sh:
#       60 SIGKILLs of nginx workers under load with every answer checked
#       against SQLite, and the arena truncated under nginx (~70 s;
#       MLC_STORM_KILLS=300 for a longer storm)
#   6. install into a temporary prefix, build a consumer with pkg-config
# MLC_TEST_QUICK=1 runs step 1 and 2 only.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
step() { printf '\n=== %s\n' "$*"; }

step "build (werror, shared + static) and test"
rm -rf b-main
meson setup b-main -Dwerror=true -Ddefault_library=both >/dev/null
ninja -C b-main
meson test -C b-main --print-errorlogs

step "exported symbols, the public header and its API reference"
tests/check-symbols.sh b-main
tests/check-api-doc.sh

if [ "${MLC_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

step "AddressSanitizer + UndefinedBehaviorSanitizer"
rm -rf b-asan
meson setup b-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C b-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C b-asan --print-errorlogs

step "ThreadSanitizer"
rm -rf b-tsan
meson setup b-tsan -Db_sanitize=thread -Dc_args=-DCK_USE_CC_BUILTINS=1 -Db_lundef=false >/dev/null
ninja -C b-tsan
TSAN_OPTIONS="halt_on_error=1 history_size=7 suppressions=$PWD/tests/tsan.supp" \
	meson test -C b-tsan --print-errorlogs

step "valgrind (core tests)"
meson test -C b-main --setup=valgrind --print-errorlogs get-set options arena contract model events bulk

step "fuzz (60 s per harness)"
if fuzz/build.sh --check; then
	rm -rf b-fuzz
	MLC_FUZZ_OUT=$PWD/b-fuzz fuzz/run.sh 60
else
	echo "(skipped: clang with its libFuzzer runtime is not installed)"
fi

step "OpenResty binding"
lua/t/run.sh "$PWD/b-main/libmlc.so"

step "relay across three hosts (netns)"
rc=0; relay/test-relay.sh b-main || rc=$?
if [ $rc = 77 ]; then echo "(skipped)"; elif [ $rc != 0 ]; then exit $rc; fi

step "nginx module and pre-forked server, end to end"
examples/test-e2e.sh --build b-main --wrk 3
rc=0; examples/test-storm.sh --build b-main || rc=$?
if [ $rc = 77 ]; then echo "(skipped)"; elif [ $rc != 0 ]; then exit $rc; fi

step "install and consume with pkg-config"
tests/test-install.sh

echo
echo "all test stages passed"
