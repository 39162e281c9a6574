#!/usr/bin/env bash
# docs/api.md is generated from include/mlc.h by tools/gen-api-doc.py:
# regenerate it and fail on any difference, so the reference cannot drift
# from the header.  Also checks that every exported function has an entry.
#   tests/check-api-doc.sh            (fix: tools/gen-api-doc.py > docs/api.md)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
python3 "$top/tools/gen-api-doc.py" "$top/include/mlc.h" >"$tmp"
if ! diff -u "$top/docs/api.md" "$tmp"; then
	echo "docs/api.md differs from what include/mlc.h gives;"
	echo "regenerate it: tools/gen-api-doc.py > docs/api.md"
	exit 1
fi
n=0
for f in $(sed -n 's/^[[:space:]]*\(mlc_[a-z0-9_]*\);/\1/p' "$top/src/libmlc.map"); do
	grep -qF "<a id=\"$f\"></a>" "$top/docs/api.md" ||
		{ echo "docs/api.md has no entry for $f"; exit 1; }
	n=$((n + 1))
done
echo "api doc: docs/api.md matches include/mlc.h ($n exported functions documented)"
