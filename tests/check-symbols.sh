#!/usr/bin/env bash
# The exported symbols of libmlc.so are exactly the version map's, the map
# lists exactly the functions the header declares, libmlc.a defines no
# global symbol outside the mlc_/mlc__ namespaces, and mlc.h compiles alone,
# with each of its *_INIT macros in use, as strict C99 and as C++ (C++11
# and C++20, -Wextra).
set -euo pipefail
b=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
so=$(ls "$b"/libmlc.so.* | head -1)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ {print $3}' | sed 's/@.*//' | grep -v '^MLC_' | sort -u >"$tmp/exported"
sed -n 's/^[[:space:]]*\(mlc_[a-z0-9_]*\);/\1/p' "$top/src/libmlc.map" | sort -u >"$tmp/map"
grep -v '^typedef' "$top/include/mlc.h" | grep -ohE '^[a-z0-9_ ]*\**(mlc_[a-z0-9_]+)\(' | grep -oE 'mlc_[a-z0-9_]+' | sort -u >"$tmp/header"
diff -u "$tmp/map" "$tmp/exported" || { echo "exports differ from libmlc.map"; exit 1; }
diff -u "$tmp/map" "$tmp/header" || { echo "libmlc.map differs from mlc.h"; exit 1; }
# The installed library has no pause points (src/pause.h): they exist only
# in the library the tests link.
if nm "$so" | grep -q 'mlc__pause'; then
	echo "libmlc.so contains pause points"; exit 1
fi
if [ -f "$b/libmlc.a" ]; then
	bad=$(nm -g --defined-only "$b/libmlc.a" | awk 'NF==3 {print $3}' | grep -vE '^(mlc_|mlc__)' || true)
	[ -z "$bad" ] || { echo "libmlc.a leaks globals:"; echo "$bad"; exit 1; }
fi
# Every *_INIT macro in use, as the header tells callers to fill a
# struct's size: C99 has designated initializers, C++ before C++20 does
# not, and g++ -Wextra warns of the fields they leave out in C++20 too.
inits=$(sed -n 's/^#define \(MLC_[A-Z_]*_INIT\) .*/\1/p' "$top/include/mlc.h")
[ -n "$inits" ] || { echo "no *_INIT macro found in mlc.h"; exit 1; }
{
	echo '#include "mlc.h"'
	echo 'int main(void) {'
	for m in $inits; do
		t=$(sed -n "s/^#define $m .*(struct \([a-z_]*\)).*/\1/p" "$top/include/mlc.h")
		[ -n "$t" ] || { echo "$m: no struct named in its definition" >&2; exit 1; }
		echo "	struct $t v_$t = $m;"
		echo "	if (v_$t.size != sizeof(struct $t)) return 1;"
	done
	echo '	return mlc_version() == 0;'
	echo '}'
} >"$tmp/h.c"
cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$top/include" -c "$tmp/h.c" -o "$tmp/h.o"
if command -v c++ >/dev/null; then
	cp "$tmp/h.c" "$tmp/h.cc"
	for std in c++11 c++20; do
		c++ -std=$std -pedantic -Wall -Wextra -Werror -I"$top/include" -c "$tmp/h.cc" -o "$tmp/hcc.o"
	done
fi
n=$(wc -l <"$tmp/map")
echo "symbols: $n exported = map = header; no pause points; header and its *_INIT macros compile as C99 and C++"
