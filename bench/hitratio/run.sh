#!/usr/bin/env bash
# The committed hit-ratio report: build (release) and run mlc-hitratio,
# with the committed "before" run as baseline, and draw the chart.
#   bench/hitratio/run.sh [--full] [mlc-hitratio options...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build-bench}
out=${OUT:-bench/results/hitratio}
mode=--quick
if [ "${1:-}" = --full ]; then mode=--full; shift; out=${OUT:-$out/full}; fi
[ -d "$build" ] || meson setup "$build" --buildtype=release -Dbench=enabled
ninja -C "$build" bench/hitratio/mlc-hitratio >/dev/null
mkdir -p "$out"
base=()
[ -f bench/results/hitratio/before/results.tsv ] &&
	base=(--baseline bench/results/hitratio/before/results.tsv)
"$build/bench/hitratio/mlc-hitratio" "$mode" --out "$out" "${base[@]}" "$@"
if command -v gnuplot >/dev/null; then
	(cd "$out" && gnuplot chart.gp)
else
	echo "run.sh: no gnuplot, chart.svg not drawn (chart.gp is there)" >&2
fi
echo "$out/report.md"
