#!/usr/bin/env bash
# bench/run.sh: build mlc in release mode, run the benchmark suite against
# its peers, and write a report.
#
#   bench/run.sh                 every case (about 5-10 minutes on 2 cores)
#   bench/run.sh --quick         a fast pass: 3 short rounds per case
#   bench/run.sh --case 'l2_*'   some cases (shell patterns, comma separated)
#   bench/run.sh --install       first apt-get the peers (Debian packages)
#   bench/run.sh --huge          also mlc-huge and shm-huge: mlc and the shm
#                                table with their memory on 2 MiB pages, in
#                                a private tmpfs mounted huge=within_size
#                                (needs root, or user namespaces)
#
# Other options: --impl mlc,lmdb (some implementations only), --rounds N,
# --ops N, --latest (also copy a partial or quick run to results/latest),
# --build DIR (default build-bench), --out DIR.  Anything after `--` goes to
# mlc-bench as it is.
#
# Output: bench/results/<date>-<host>/{report.md,results.json,machine.txt,
# chart.svg,bench.txt,sizes.txt}; a full run is also copied to
# bench/results/latest/.  Nothing is installed unless --install is given.
# Everything the run starts (the benchmark, the servers it starts) is
# stopped when this script exits, however it exits.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/publish.sh"
root=$(cd "$here/.." && pwd)
build="$root/build-bench"
cases=""
impls=""
quick=0
install=0
latest=0
rounds=""
ops=""
out=""
extra=()

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
all_args=("$@")
huge=0

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--install) install=1 ;;
	--huge) huge=1 ;;
	--latest) latest=1 ;;
	--case) cases="$2"; shift ;;
	--impl) impls="$2"; shift ;;
	--rounds) rounds="$2"; shift ;;
	--ops) ops="$2"; shift ;;
	--build) build="$2"; shift ;;
	--out) out="$2"; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

peers_pkgs=(liblmdb-dev libhiredis-dev libmemcached-dev redis-server
	memcached gnuplot-nox)

if [ "$install" = 1 ]; then
	# Keep the packages' init scripts from starting system-wide servers:
	# the benchmark starts its own, on unix sockets, and stops them.
	policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	sudo_cmd=()
	[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
		meson ninja-build pkg-config gcc libck-dev libxxhash-dev \
		"${peers_pkgs[@]}"
	[ "$made_policy" = 1 ] && rm -f "$policy"
fi

# ---- huge pages: run again inside a mount namespace of our own ------------
# A tmpfs mounted huge=within_size there backs files with 2 MiB pages
# (/dev/shm's are 4 KiB unless its mount says otherwise); the benchmark puts
# the -huge implementations' memory in it.  The mount goes with the
# namespace, whatever way the run ends.
if [ "$huge" = 1 ] && [ -z "${MLC_BENCH_HUGE_DIR:-}" ]; then
	hdir=$(mktemp -d /tmp/mlc-bench-huge.XXXXXX)
	ns=(unshare --mount --propagation private)
	[ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --mount)
	rc=0
	MLC_BENCH_HUGE_DIR=$hdir "${ns[@]}" sh -c '
		mount -t tmpfs -o huge=within_size,size=50% tmpfs "$MLC_BENCH_HUGE_DIR" ||
			{ echo "run.sh: cannot mount a huge-page tmpfs" >&2; exit 2; }
		shift; exec "$@"' sh - "$0" "${all_args[@]}" || rc=$?
	rmdir "$hdir" 2>/dev/null || true
	exit "$rc"
fi

# ---- build (release) ----------------------------------------------------
if [ -f "$build/build.ninja" ]; then
	meson configure "$build" -Dbuildtype=release -Dbench=enabled >/dev/null
else
	meson setup "$build" "$root" --buildtype=release -Dbench=enabled
fi
ninja -C "$build" bench/mlc-bench bench/bench-sizes

bench="$build/bench/mlc-bench"
sizes="$build/bench/bench-sizes"

# ---- where the results go -------------------------------------------------
host=$(hostname -s 2>/dev/null || hostname)
stamp=$(date -u +%Y%m%d-%H%M%S)
suffix=""
[ "$quick" = 1 ] && suffix="-quick"
[ "$huge" = 1 ] && suffix="$suffix-huge"
[ -n "$cases$impls$ops" ] && suffix="$suffix-partial"
[ -n "$out" ] || out="$here/results/$stamp-$host$suffix"
mkdir -p "$out"
rm -f "$out/results.jsonl"

# ---- stop whatever we started, however we leave ---------------------------
bench_pid=""
cleanup() {
	if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
		# The benchmark stops its servers and removes its arenas on
		# SIGTERM; its servers also die with it (PR_SET_PDEATHSIG).
		kill -TERM "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- the machine ------------------------------------------------------------
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host: $host"
	echo "kernel: $(uname -srmv)"
	echo "mlc: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
	# The library is built from the work tree as it is: say what differs
	# from the commit above.
	echo "uncommitted library changes: $(git -C "$root" status --short -- src include meson.build 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "compiler: $(${CC:-gcc} --version | head -1)"
	echo "meson: $(meson --version), ninja: $(ninja --version)"
	echo "buildtype: release"
	echo
	echo "== packages (dpkg)"
	for p in liblmdb0 liblmdb-dev libhiredis0.14 libhiredis-dev \
		libmemcached11t64 libmemcached11 libmemcached-dev redis-server \
		redis-tools memcached gnuplot-nox libck0 libck-dev \
		libxxhash0 libxxhash-dev libc6; do
		v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
		[ -n "$v" ] && echo "$p $v"
	done
	echo
	echo "== servers"
	command -v redis-server >/dev/null && redis-server --version || echo "redis-server: not installed"
	command -v memcached >/dev/null && memcached -V || echo "memcached: not installed"
	echo
	echo "== lscpu"
	lscpu
	echo
	echo "== memory"
	head -3 /proc/meminfo
	df -h /dev/shm | tail -1
	if [ -n "${MLC_BENCH_HUGE_DIR:-}" ]; then
		echo "huge-page tmpfs for mlc-huge, shm-huge:"
		grep " $MLC_BENCH_HUGE_DIR " /proc/mounts || true
		grep -i hugepages /proc/meminfo
	fi
} > "$out/machine.txt" 2>&1

"$sizes" > "$out/sizes.txt"

# ---- run ------------------------------------------------------------------
args=(--json "$out/results.jsonl")
[ "$quick" = 1 ] && args+=(--quick)
[ -n "$cases" ] && args+=(--case "$cases")
[ -n "$impls" ] && args+=(--impl "$impls")
[ -n "$rounds" ] && args+=(--rounds "$rounds")
[ -n "$ops" ] && args+=(--ops "$ops")
args+=("${extra[@]+"${extra[@]}"}")

echo "run.sh: $bench ${args[*]}"
start=$(date +%s)
"$bench" "${args[@]}" > >(tee "$out/bench.txt") 2>&1 &
bench_pid=$!
wait "$bench_pid"
bench_pid=""
end=$(date +%s)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
echo "run time: $((end - start)) s" >> "$out/machine.txt"

# ---- report -----------------------------------------------------------------
command_line="bench/run.sh"
[ "$quick" = 1 ] && command_line="$command_line --quick"
[ "$huge" = 1 ] && command_line="$command_line --huge"
[ -n "$cases" ] && command_line="$command_line --case '$cases'"
[ -n "$impls" ] && command_line="$command_line --impl '$impls'"
[ -n "$rounds" ] && command_line="$command_line --rounds $rounds"
[ -n "$ops" ] && command_line="$command_line --ops $ops"
[ "${#extra[@]}" -gt 0 ] && command_line="$command_line -- ${extra[*]}"
python3 "$here/report.py" --dir "$out" --command "$command_line" \
	--seconds "$((end - start))"
if command -v gnuplot >/dev/null; then
	(cd "$out" && gnuplot chart.gp) || echo "run.sh: gnuplot failed" >&2
else
	echo "run.sh: gnuplot not installed: no chart.svg (--install brings it)" >&2
fi
rm -f "$out/results.jsonl"

if [ "$latest" = 1 ] || { [ "$quick" = 0 ] && [ "$huge" = 0 ] &&
			  [ -z "$cases$impls$ops$rounds" ]; }; then
	publish_run "$out" "$here/results/latest"
	echo "run.sh: report in $out (copied to bench/results/latest)"
else
	echo "run.sh: report in $out"
fi
