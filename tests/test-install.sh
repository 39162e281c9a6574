#!/usr/bin/env bash
# Install mlc into a temporary prefix, then build tests/consumer.c against
# the installed copy with nothing but pkg-config: once linked to libmlc.so,
# once to libmlc.a (libmlc static, libc and the rest dynamic, the private
# libraries from `pkg-config --static`).  Also checks that mlcctl and mlc.h
# are installed and that the installed mlcctl runs; that mlc.pc alone (no
# ck.pc) serves a consumer and leaks no define; that MLC_VERSION_NUMBER
# works in #if; that the README's example compiles with pkg-config alone,
# runs and prints what it should; and that `man -M PREFIX/share/man`
# shows mlcctl(1) and mlc(3).  No network needed.
#   tests/test-install.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
say() { printf '  %s\n' "$*"; }
die() { echo "test-install: $*" >&2; exit 1; }

# The library and the tools only: quick.
meson setup "$tmp/build" "$top" --prefix="$prefix" -Ddefault_library=both \
	-Dtests=disabled -Dbench=disabled >"$tmp/setup.log" 2>&1 ||
	{ cat "$tmp/setup.log"; die "meson setup failed"; }
ninja -C "$tmp/build" install >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; die "ninja install failed"; }

pc=$(find "$prefix" -name mlc.pc -path '*/pkgconfig/*')
[ "$(printf '%s\n' "$pc" | grep -c .)" = 1 ] || die "mlc.pc: '$pc'"
export PKG_CONFIG_PATH=${pc%/*}
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --variable=prefix mlc)" = "$prefix" ] ||
	die "pkg-config finds another mlc: $(pkg-config --variable=prefix mlc)"
libdir=$(pkg-config --variable=libdir mlc)
incdir=$(pkg-config --variable=includedir mlc)
say "installed into $prefix (libdir ${libdir#"$prefix"/})"

# What must be there.
[ -x "$prefix/bin/mlcctl" ] || die "mlcctl not installed in $prefix/bin"
cmp -s "$incdir/mlc.h" "$top/include/mlc.h" || die "mlc.h not installed"
[ -f "$libdir/libmlc.a" ] || die "libmlc.a not installed"
[ -e "$libdir/libmlc.so" ] && [ -e "$libdir/libmlc.so.0" ] ||
	die "libmlc.so not installed with its soname link"
hv=$(sed -n 's/^#define MLC_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)$/\2/p' \
	"$top/include/mlc.h" | paste -sd.)
[ "$(pkg-config --modversion mlc)" = "$hv" ] ||
	die "mlc.pc version $(pkg-config --modversion mlc), header $hv"
say "mlcctl, mlc.h, libmlc.so, libmlc.a, mlc.pc $hv: present"

cflags=$(pkg-config --cflags mlc)
libs=$(pkg-config --libs mlc)
slibs=$(pkg-config --static --libs mlc)
say "pkg-config --cflags --libs mlc: $cflags $libs"
say "pkg-config --static --libs mlc: $slibs"

# Dynamic: exactly what pkg-config gives.
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror $cflags "$top/tests/consumer.c" \
	-o "$tmp/consumer" $libs
readelf -d "$tmp/consumer" | grep -q 'NEEDED.*libmlc\.so\.0' ||
	die "dynamic consumer does not need libmlc.so.0"
out=$(LD_LIBRARY_PATH=$libdir "$tmp/consumer") || die "dynamic consumer failed"
say "dynamic: $out"
ldd_out=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer")
grep -q "libmlc.so.0 => $libdir/" <<<"$ldd_out" ||
	die "dynamic consumer loads another libmlc: $ldd_out"

# Static libmlc: -lmlc from libmlc.a, everything else as pkg-config --static
# says (the private requirements: threads, ck), dynamic libc.
sargs=()
for w in $slibs; do
	if [ "$w" = -lmlc ]; then
		sargs+=(-Wl,-Bstatic -lmlc -Wl,-Bdynamic)
	else
		sargs+=("$w")
	fi
done
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror $cflags "$top/tests/consumer.c" \
	-o "$tmp/consumer-static" "${sargs[@]}"
if readelf -d "$tmp/consumer-static" | grep -q 'NEEDED.*libmlc'; then
	die "static consumer still needs libmlc.so"
fi
out=$(env -u LD_LIBRARY_PATH "$tmp/consumer-static") ||
	die "static consumer failed"
say "static libmlc: $out"

# Only mlc's own .pc on the search path (no ck.pc, no system dirs): --cflags
# and --libs must need nothing else, and leak no defines (ck.pc's
# -D__x86_64__ went to every consumer while ck was in Requires).
lcflags=$(PKG_CONFIG_LIBDIR=${pc%/*} pkg-config --cflags mlc) ||
	die "pkg-config --cflags mlc needs another .pc than mlc's"
llibs=$(PKG_CONFIG_LIBDIR=${pc%/*} pkg-config --libs mlc) ||
	die "pkg-config --libs mlc needs another .pc than mlc's"
PKG_CONFIG_LIBDIR=${pc%/*} pkg-config --static --libs mlc >/dev/null ||
	die "pkg-config --static --libs mlc needs another .pc than mlc's"
case " $lcflags " in *" -D"*) die "pkg-config --cflags mlc leaks a define: $lcflags" ;; esac
say "with only mlc.pc on PKG_CONFIG_LIBDIR: $lcflags $llibs"

# The version macros work in #if (0.1.0 had enum constants: always 0 there).
printf '#include <mlc.h>\n#if MLC_VERSION_NUMBER != (%s << 16 | %s << 8 | %s)\n#error version\n#endif\nint main(void) { return mlc_version() == MLC_VERSION_NUMBER ? 0 : 1; }\n' \
	$(tr . ' ' <<<"$hv") >"$tmp/ver.c"
# shellcheck disable=SC2086
"$CC" -std=c99 -pedantic -Wall -Werror $lcflags "$tmp/ver.c" -o "$tmp/ver" $llibs ||
	die "MLC_VERSION_NUMBER is not usable in #if"
LD_LIBRARY_PATH=$libdir "$tmp/ver" || die "mlc_version() is not MLC_VERSION_NUMBER"
say "MLC_VERSION_NUMBER in #if: $hv"

# The README's example is a complete program: extract it, build it with
# pkg-config alone, run it, check what it prints.
awk '/^## Use it/ { s = 1 } s && /^```c$/ { c = 1; next } c && /^```$/ { exit } c' \
	"$top/README.md" >"$tmp/users.c"
[ -s "$tmp/users.c" ] || die "no C block under README's 'Use it'"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror $lcflags "$tmp/users.c" -o "$tmp/users" $llibs ||
	die "README's example does not compile as written"
rname=mlc-readme-$$
out=$(LD_LIBRARY_PATH=$libdir "$tmp/users" "$rname" 2>&1) || {
	rm -f "/dev/shm/$rname"; die "README's example failed: $out"; }
rm -f "/dev/shm/$rname"
want='user:42: {"name":"Ada"} (L3)
user:42: {"name":"Ada"} (L1)
user:7: no such user (L3)
user:42: {"name":"Ada L."} (L1)'
[ "$out" = "$want" ] || die "README's example printed: $out"
say "README's example: compiled with pkg-config, ran, printed the four lines"

# The relay, when it was built (hiredis found): its static library, header
# and .pc are installed, and a consumer builds and links with pkg-config.
if [ -n "$(find "$prefix" -name mlc-relay.pc -path '*/pkgconfig/*')" ]; then
	[ -f "$incdir/mlc-relay.h" ] || die "mlc-relay.h not installed"
	[ -f "$libdir/libmlc-relay.a" ] || die "libmlc-relay.a not installed"
	printf '#include <stdio.h>\n#include <mlc-relay.h>\nint main(void) { struct mlc_relay_stats st = MLC_RELAY_STATS_INIT; char buf[512]; return mlc_relay_stats_format(&st, buf, sizeof(buf)) < 0; }\n' >"$tmp/relay.c"
	# shellcheck disable=SC2046
	"$CC" -std=c11 -Wall -Werror $(pkg-config --cflags mlc-relay) "$tmp/relay.c" \
		-o "$tmp/relay" $(pkg-config --libs mlc-relay) ||
		die "a relay consumer does not build with pkg-config mlc-relay"
	LD_LIBRARY_PATH=$libdir "$tmp/relay" || die "relay consumer failed"
	say "relay: libmlc-relay.a, mlc-relay.h, mlc-relay.pc installed; a consumer builds with pkg-config"
	unit=$prefix/lib/systemd/system/mlc-relay@.service
	[ -f "$unit" ] && [ -f "$prefix/lib/tmpfiles.d/mlc.conf" ] &&
		[ -f "$prefix/lib/sysusers.d/mlc.conf" ] ||
		die "the relay's systemd unit, tmpfiles.d or sysusers.d file is not installed"
	grep -q "^ExecStart=$prefix/bin/mlc-relay --arena %i " "$unit" ||
		die "mlc-relay@.service does not start the installed mlc-relay"
	if command -v systemd-analyze >/dev/null; then
		cp "$unit" "$tmp/mlc-relay@t.service"
		systemd-analyze verify --man=no "$tmp/mlc-relay@t.service" >"$tmp/verify" 2>&1 ||
			die "systemd-analyze verify: $(cat "$tmp/verify")"
		say "relay: mlc-relay@.service (systemd-analyze verify: clean), tmpfiles.d and sysusers.d installed"
	fi
else
	say "relay not built (no hiredis): its install not checked"
fi

# The man pages.
for p in man1/mlcctl.1 man3/mlc.3; do
	[ -f "$prefix/share/man/$p" ] || die "$p not installed"
done
MANWIDTH=80 man -M "$prefix/share/man" mlcctl 2>/dev/null | grep -q 'mlcctl - look into and operate' ||
	die "man -M $prefix/share/man mlcctl does not show mlcctl(1)"
MANWIDTH=80 man -M "$prefix/share/man" 3 mlc 2>/dev/null | grep -q 'mlc_cache_open' ||
	die "man -M $prefix/share/man 3 mlc does not show mlc(3)"
say "man pages: mlcctl(1) and mlc(3) installed and readable with man -M"

# The installed mlcctl.
export LD_LIBRARY_PATH=$libdir
"$prefix/bin/mlcctl" --version >/dev/null || die "installed mlcctl does not run"
a=$tmp/arena.mlc
"$prefix/bin/mlcctl" --file "$a" set --create --bytes 8M ns k installed-ctl
[ "$("$prefix/bin/mlcctl" --file "$a" get ns k)" = installed-ctl ] ||
	die "installed mlcctl: get"
"$prefix/bin/mlcctl" --file "$a" check >/dev/null || die "installed mlcctl: check"
say "installed mlcctl: $("$prefix/bin/mlcctl" --version)"
echo "install and consume with pkg-config: ok"
