#!/usr/bin/env bash
# Build the libFuzzer harnesses: the library's sources and each harness in
# one clang invocation with -fsanitize=fuzzer,address,undefined, so the
# library itself is instrumented for coverage and checked by ASan/UBSan.
#
#   fuzz/build.sh [OUTDIR]       (default: build-fuzz)
#   fuzz/build.sh --check        only tell (exit 0 or 2) whether clang and
#                                its libFuzzer runtime are there
#
# MLC_SRC_ROOT=DIR takes include/ and src/ from DIR instead of this tree
# (for example a `git archive` of a commit while the tree is being edited).
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev),
# ck and xxhash headers.  Exit status 2 when the fuzzer runtime is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-clang}
check=0
if [ "${1:-}" = --check ]; then
	check=1
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
else
	out=${1:-$root/build-fuzz}
	mkdir -p "$out"
fi

if ! command -v "$CC" >/dev/null 2>&1 ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
     "$CC" -x c -fsanitize=fuzzer - -o "$out/.probe" >/dev/null 2>&1; then
	echo "fuzz/build.sh: $CC with a libFuzzer runtime is not available" >&2
	exit 2
fi
rm -f "$out/.probe"
[ "$check" = 1 ] && exit 0

src=${MLC_SRC_ROOT:-$root}
version=$(sed -n "s/^project('mlc', 'c', version: '\([^']*\)'.*/\1/p" "$root/meson.build")
cflags=(-g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-DMLC_VERSION_STRING="\"${version:-0}\""
	-I"$src/include" -I"$src/src" $(pkg-config --cflags ck 2>/dev/null || true))
libs=($(pkg-config --libs ck 2>/dev/null || echo -lck) -lpthread)

for h in fuzz-arena fuzz-ops; do
	"$CC" "${cflags[@]}" "$src"/src/*.c "$root/fuzz/$h.c" "${libs[@]}" -o "$out/$h"
	echo "built $out/$h"
done
