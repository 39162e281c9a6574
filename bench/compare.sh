#!/usr/bin/env bash
# bench/compare.sh: mlc against an older commit of itself, side by side in
# one run.  Builds mlc-bench (release) for OLD and NEW (default HEAD) in
# temporary worktrees (so uncommitted edits are never measured), then runs
# the two in alternation, PASSES times, on the chosen cases (mlc only: the
# peers are the same code either way), and prints per case the median ns/op
# of each side over the passes and the ratio new/old.  Alternating passes
# spread the machine's noise over both.
#
#   bench/compare.sh OLD [NEW] [--case 'l1_*,l2_*'] [--passes N] [--rounds N]
#                    [--keys N]
#
# Defaults: the read paths (l1_hit_*, l2_hit_*), 5 passes of 3 rounds.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
rev=${1:?usage: bench/compare.sh OLD [NEW] [--case PATS] [--passes N] [--rounds N]}
shift
new_rev=HEAD
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	new_rev=$1
	shift
fi
cases='l1_hit_*,l2_hit_*'
passes=5
rounds=3
keys=()
while [ $# -gt 0 ]; do
	case "$1" in
	--case) cases="$2"; shift ;;
	--passes) passes="$2"; shift ;;
	--rounds) rounds="$2"; shift ;;
	--keys) keys=(--keys "$2"); shift ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

tmp=$(mktemp -d)
cleanup() {
	git -C "$root" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true
	git -C "$root" worktree remove --force "$tmp/new" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

build() {	# SRC DIR
	meson setup "$2" "$1" -Dbuildtype=release -Dtests=disabled \
		-Drelay=disabled >/dev/null
	ninja -C "$2" bench/mlc-bench >/dev/null
}
git -C "$root" worktree add --detach "$tmp/old" "$rev" >/dev/null 2>&1
git -C "$root" worktree add --detach "$tmp/new" "$new_rev" >/dev/null 2>&1
old_id=$(git -C "$tmp/old" rev-parse --short HEAD)
new_id=$(git -C "$tmp/new" rev-parse --short HEAD)
build "$tmp/old" "$tmp/b-old"
build "$tmp/new" "$tmp/b-new"

for p in $(seq 1 "$passes"); do
	for side in old new; do
		"$tmp/b-$side/bench/mlc-bench" --impl mlc --case "$cases" \
			--rounds "$rounds" "${keys[@]}" \
			--json "$tmp/$side.$p.json" \
			>/dev/null 2>&1
	done
done

python3 - "$tmp" "$passes" "$old_id" "$new_id" <<'PY'
import json, statistics, sys
tmp, passes, old_id, new_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
res = {"old": {}, "new": {}}
order = []
for side in res:
    for p in range(1, passes + 1):
        with open(f"{tmp}/{side}.{p}.json") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("impl") != "mlc" or row.get("status") != "ok":
                    continue
                c = row["case"]
                if c not in order:
                    order.append(c)
                res[side].setdefault(c, []).append(row["ns_op"])
print(f"mlc {new_id} (new) against {old_id} (old): median ns/op over "
      f"{passes} alternating passes")
print()
print(f"| case | old {old_id} | new {new_id} | new/old |")
print("|---|---:|---:|---:|")
for c in order:
    o, n = res["old"].get(c), res["new"].get(c)
    if not o or not n:
        continue
    mo, mn = statistics.median(o), statistics.median(n)
    print(f"| {c} | {mo:.1f} | {mn:.1f} | {mn / mo:.3f} |")
PY
