#!/usr/bin/env bash
# Fuzz each harness for SECONDS (default 60) and print one line per
# harness: executions and crashes.  Exit status 1 if anything crashed,
# timed out (a hang: -timeout), ran out of memory, or if a kept reproducer
# under fuzz/crashes/<harness>/ still fails.
#
#   fuzz/run.sh [SECONDS]
#
# Builds with fuzz/build.sh into $MLC_FUZZ_OUT (default: build-fuzz).  The
# committed seeds (fuzz/corpus/<harness>/) are read only; what libFuzzer
# adds goes to $MLC_FUZZ_OUT/corpus/<harness>/ and findings to
# $MLC_FUZZ_OUT/artifacts/<harness>/.
set -uo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${MLC_FUZZ_OUT:-$root/build-fuzz}

"$root/fuzz/build.sh" "$out" >/dev/null || exit $?

declare -A max_len=([fuzz-arena]=512 [fuzz-ops]=2048)
status=0
for h in fuzz-arena fuzz-ops; do
	work=$out/corpus/$h art=$out/artifacts/$h log=$out/$h.log
	mkdir -p "$work" "$art"
	rm -f "$art"/crash-* "$art"/timeout-* "$art"/oom-* "$art"/leak-*

	# Reproducers of bugs found before: each must now pass.
	known=0 still=0
	for f in "$root/fuzz/crashes/$h"/*; do
		[ -f "$f" ] || continue
		case $f in *.md|*.txt|*.py) continue ;; esac
		known=$((known + 1))
		if ! "$out/$h" -runs=1 "$f" >"$out/$h.replay.log" 2>&1; then
			still=$((still + 1))
			echo "$h: reproducer $(basename "$f") still fails:" \
			     "$(grep -m1 -E 'Assertion|ERROR:|runtime error' "$out/$h.replay.log")"
		fi
	done

	"$out/$h" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
		-max_len="${max_len[$h]}" -print_final_stats=1 \
		-artifact_prefix="$art/" "$work" "$root/fuzz/corpus/$h" \
		>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	crashes=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o \
		-name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
	if [ "$crashes" -eq 0 ] && [ "$rc" -ne 0 ]; then
		crashes=1	# died without an artifact: count it
	fi
	printf '%s: %s executions (#%s DONE) in %s s, %s crashes' \
		"$h" "${execs:-0}" "${execs:-0}" "$secs" "$crashes"
	[ "$known" -gt 0 ] && printf ', %s of %s kept reproducers still fail' \
		"$still" "$known"
	printf '\n'
	if [ "$crashes" -ne 0 ]; then
		grep -m3 -E 'ERROR:|Assertion|^fuzz-|SUMMARY' "$log" | sed 's/^/    /'
		ls "$art" | sed 's/^/    artifact: /'
		echo "    log: $log"
		status=1
	fi
	[ "$still" -ne 0 ] && status=1
done
exit $status
