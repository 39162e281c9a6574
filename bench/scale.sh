#!/usr/bin/env bash
# bench/scale.sh: how mlc's costs grow with the number of keys, beside the
# floors measured in the same rounds, and how much an arena holds.
#
#   bench/scale.sh                  1e3 .. 1e7 keys, 7 rounds (~10-15 min)
#   bench/scale.sh --quick          3 short rounds, 1e3 .. 1e5 keys, a
#                                   64 MiB arena for the memory part (~1 min)
#   bench/scale.sh --max-keys 1e6   stop at 1e6 keys (also --min-keys)
#   bench/scale.sh --keys 1e3,1e5   exactly these key counts
#
# Other options: --rounds N, --impl mlc,hash,shm,lmdb (the default: mlc and
# the floors; LMDB when it was built), --no-mem (skip the memory part),
# --no-speed (only the memory part), --quiet-ms MS (how long each key
# count may wait in all for a quiet machine before its rounds; default
# 20000, --quick 5000), --build DIR (default build-bench), --out DIR.
#
# Per key count N it runs build-bench/bench/mlc-bench --keys N on four cases
# (l1_hit_cold, l2_hit_16_cold, set, miss_load; 16 B keys and values), then
# bench-scale-mem (items per arena byte until the first eviction, index
# occupancy at the first index eviction), and writes
# bench/results/scale-<date>-<host>[-quick]/{report.md,chart.svg,...}.  A
# full run (1e3..1e7, no --quick, --rounds or --impl) is also copied to
# bench/results/scale/, which is committed.  Nothing is installed; the
# arenas are removed by the programs that made them (mlc-bench on exit,
# even on SIGTERM; bench-scale-mem's are anonymous).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/publish.sh"
root=$(cd "$here/.." && pwd)
build="$root/build-bench"
quick=0
min_keys=1e3
max_keys=""
keys_list=""
rounds=""
impls="mlc,hash,shm,lmdb"
mem=1
speed=1
out=""
custom=0
quiet_ms=""

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--max-keys) max_keys="$2"; shift ;;
	--min-keys) min_keys="$2"; custom=1; shift ;;
	--keys) keys_list="$2"; custom=1; shift ;;
	--rounds) rounds="$2"; custom=1; shift ;;
	--impl) impls="$2"; custom=1; shift ;;
	--no-mem) mem=0; custom=1 ;;
	--no-speed) speed=0; custom=1 ;;
	--quiet-ms) quiet_ms="$2"; shift ;;
	--build) build="$2"; shift ;;
	--out) out="$2"; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "scale.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

if [ -z "$max_keys" ]; then
	if [ "$quick" = 1 ]; then max_keys=1e5; else max_keys=1e7; fi
fi
[ "$max_keys" = 1e7 ] || custom=1
if [ -z "$keys_list" ]; then
	keys_list=$(python3 -c "
lo, hi = int(float('$min_keys')), int(float('$max_keys'))
n, out = 1000, []
while n <= hi:
    if n >= lo:
        out.append(str(n))
    n *= 10
print(','.join(out))")
else
	keys_list=$(python3 -c "
print(','.join(str(int(float(k))) for k in '$keys_list'.split(',')))")
fi
[ -n "$keys_list" ] || { echo "scale.sh: no key count in range" >&2; exit 2; }

# ---- build (release) ----------------------------------------------------
if [ -f "$build/build.ninja" ]; then
	meson configure "$build" -Dbuildtype=release -Dbench=enabled >/dev/null
else
	meson setup "$build" "$root" --buildtype=release -Dbench=enabled
fi
ninja -C "$build" bench/mlc-bench bench/bench-sizes bench/bench-scale-mem

bench="$build/bench/mlc-bench"

# ---- where the results go -------------------------------------------------
host=$(hostname -s 2>/dev/null || hostname)
stamp=$(date -u +%Y%m%d-%H%M%S)
suffix=""
[ "$quick" = 1 ] && suffix="-quick"
[ "$custom" = 1 ] && suffix="$suffix-partial"
[ -n "$out" ] || out="$here/results/scale-$stamp-$host$suffix"
mkdir -p "$out"
rm -f "$out/results.jsonl" "$out/mem.jsonl"

# ---- stop whatever we started, however we leave ---------------------------
child=""
cleanup() {
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		# mlc-bench removes its arenas and LMDB files on SIGTERM.
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

run() {	# run a program in the background so the trap can stop it
	"$@" &
	child=$!
	wait "$child"
	child=""
}

mem_avail_mib() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
shm_avail_mib() { df -m --output=avail /dev/shm | tail -1 | tr -d ' '; }

# ---- the machine ------------------------------------------------------------
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host: $host"
	echo "kernel: $(uname -srmv)"
	echo "mlc: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "mlc commit: $(git -C "$root" log -1 --format='%h %s' 2>/dev/null | cut -c1-100)"
	echo "library last changed in: $(git -C "$root" log -1 --format='%h %s' -- src include 2>/dev/null | cut -c1-100)"
	echo "uncommitted library changes: $(git -C "$root" status --short -- src include meson.build 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "compiler: $(${CC:-gcc} --version | head -1)"
	echo "buildtype: release"
	echo "keys: $keys_list"
	echo "implementations asked: $impls"
	echo "lmdb: $(dpkg-query -W -f='${Version}' liblmdb-dev 2>/dev/null || echo 'not installed')"
	echo
	echo "== lscpu"
	lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|L1d|L2|L3|Hypervisor)' || true
	getconf -a 2>/dev/null | grep -E '^LEVEL[123]_D?CACHE_SIZE' || true
	echo
	echo "== memory"
	head -3 /proc/meminfo
	df -h /dev/shm | tail -1
} > "$out/machine.txt" 2>&1

"$build/bench/bench-sizes" > "$out/sizes.txt"
"$bench" --list > "$out/impls.txt"

start=$(date +%s)
# ---- memory first: counts, not times, so the machine's load does not
# matter; the speed part then runs when others are more likely done. ----
if [ "$mem" = 1 ]; then
	margs=(--json "$out/mem.jsonl")
	# shellcheck disable=SC2054 # the commas are bench-scale-mem's
	[ "$quick" = 1 ] && margs+=(--bytes 64e6 --seeds 2 --occ-items 65536,524288)
	echo "scale.sh: bench-scale-mem ${margs[*]}"
	run "$build/bench/bench-scale-mem" "${margs[@]}" > >(tee "$out/mem.txt") 2>&1
fi
mid=$(date +%s)

# ---- speed: the four paths at each key count ------------------------------
cases="l1_hit_cold,l2_hit_16_cold,set,miss_load"
if [ "$speed" = 1 ]; then
	: > "$out/bench.txt"
	for n in ${keys_list//,/ }; do
		# Every implementation of a case is open at once: the mlc arena
		# (~190 B a key), the shm floor (128 B a key, power of 2), the
		# hash (~70 B), LMDB (~100 B), mlc's L1 (~100 B).  Leave room.
		need=$(( n * 700 / 1048576 + 512 ))
		if [ "$(mem_avail_mib)" -lt "$need" ] ||
		   [ "$(shm_avail_mib)" -lt "$(( need / 2 ))" ]; then
			echo "scale.sh: $n keys skipped: needs about $need MiB," \
			     "$(mem_avail_mib) MiB available" | tee -a "$out/bench.txt"
			echo "{\"skipped_keys\":$n,\"need_mib\":$need}" >> "$out/results.jsonl"
			continue
		fi
		args=(--keys "$n" --case "$cases" --impl "$impls"
		      --json "$out/results.jsonl")
		[ "$quick" = 1 ] && args+=(--quick)
		[ -n "$rounds" ] && args+=(--rounds "$rounds")
		# The driver waits up to 3 s before a round for others to
		# leave the CPUs alone; on a machine that stays busy that is
		# minutes per key count for nothing: cap it.
		args+=(--quiet-ms "${quiet_ms:-$([ "$quick" = 1 ] && echo 5000 || echo 20000)}")
		echo "scale.sh: $bench ${args[*]}"
		echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/bench.txt"
		run "$bench" "${args[@]}" > >(tee -a "$out/bench.txt") 2>&1
	done
fi
end=$(date +%s)
{
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "run time: memory $((mid - start)) s, speed $((end - mid)) s"
} >> "$out/machine.txt"

# ---- report -----------------------------------------------------------------
command_line="bench/scale.sh"
[ "$quick" = 1 ] && command_line="$command_line --quick"
[ "$custom" = 1 ] && command_line="$command_line --keys $keys_list"
[ -n "$rounds" ] && command_line="$command_line --rounds $rounds"
[ "$impls" != "mlc,hash,shm,lmdb" ] && command_line="$command_line --impl $impls"
[ "$mem" = 0 ] && command_line="$command_line --no-mem"
[ "$speed" = 0 ] && command_line="$command_line --no-speed"
python3 "$here/scale.py" --dir "$out" --command "$command_line"
if command -v gnuplot >/dev/null; then
	if [ -f "$out/chart.gp" ]; then
		(cd "$out" && gnuplot chart.gp) || echo "scale.sh: gnuplot failed" >&2
	fi
else
	echo "scale.sh: gnuplot not installed: no chart.svg" >&2
fi

if [ "$quick" = 0 ] && [ "$custom" = 0 ]; then
	publish_run "$out" "$here/results/scale"
	echo "scale.sh: report in $out (copied to bench/results/scale)"
else
	echo "scale.sh: report in $out"
fi
