#!/usr/bin/env bash
# Build ngx_http_mlc_module.so for Debian's nginx, the way Debian builds its
# third-party dynamic modules (dh's nginx_mod build system, nginx-dev): run
# nginx's configure from /usr/share/nginx/src with the exact flags Debian's
# nginx was configured with (conf_flags: --with-compat and the rest, so the
# module's signature matches the installed binary), add this directory as a
# dynamic module, and "make modules".
#
#   examples/nginx/build.sh [MLC_BUILD_DIR [OUT_DIR]]
#
# MLC_BUILD_DIR is a meson build of mlc (default build-ngx); the module links
# its libmlc.so with an rpath to it.  Prints the path of the .so last.
# Exits 77 when nginx-dev is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mlc_build=$(cd "${1:-$root/build-ngx}" && pwd)
out=${2:-$mlc_build/nginx-module}
src=/usr/share/nginx/src

if [ ! -f "$src/conf_flags" ] || [ ! -x /usr/sbin/nginx ]; then
	echo "nginx-dev is not installed ($src/conf_flags missing)" >&2
	exit 77
fi
[ -e "$mlc_build/libmlc.so" ] || { echo "no libmlc.so in $mlc_build" >&2; exit 1; }

# configure writes a Makefile into the source tree: work on a copy
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)		# the build below runs from another directory
cp -a "$src" "$out/nginx-src"
cd "$out/nginx-src"
# shellcheck disable=SC1091
. ./conf_flags			# NGX_CONF_FLAGS=( --prefix=... --with-compat ... )

bf() { dpkg-buildflags --get "$1" 2>/dev/null || true; }
cflags="$(bf CFLAGS) -fPIC $(bf CPPFLAGS)"
ldflags="$(bf LDFLAGS) -fPIC"

export MLC_INCS="$root/include"
export MLC_LIBS="-L$mlc_build -Wl,-rpath,$mlc_build -lmlc -lsqlite3"
if ! ./configure --with-cc-opt="$cflags" --with-ld-opt="$ldflags" \
	"${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$here" \
	--builddir="$out/objs" >"$out/configure.log" 2>&1; then
	tail -30 "$out/configure.log" >&2
	exit 1
fi
make -s -f "$out/objs/Makefile" modules >"$out/make.log" 2>&1 || {
	cat "$out/make.log" >&2
	exit 1
}
echo "$out/objs/ngx_http_mlc_module.so"
