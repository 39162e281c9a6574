#!/usr/bin/env bash
# Pack a source rock of resty.mlc with `luarocks pack`.
#
#   lua/pack.sh GIT_URL TAG [OUTDIR]   a release: GIT_URL is the project's
#                                      repository (git+https://...), TAG the
#                                      release tag
#   lua/pack.sh                        a trial: a temporary clone of this
#                                      checkout's HEAD, tagged there (this
#                                      repository's tags are not touched)
#
# Writes OUTDIR/lua-resty-mlc-0.2.0-1.rockspec (lua/'s, with the URL and tag
# filled in) and OUTDIR/lua-resty-mlc-0.2.0-1.src.rock (OUTDIR: b-pack/ in
# the checkout, which git ignores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
spec=lua-resty-mlc-0.2.0-1.rockspec
command -v luarocks >/dev/null || { echo "luarocks is not installed (apt-get install luarocks)"; exit 77; }

tmp=$(mktemp -d /tmp/mlc-pack.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ $# -ge 2 ]; then
	url=$1 tag=$2 out=${3:-$root/b-pack}
else
	git clone -q "$root" "$tmp/mlc"
	git -C "$tmp/mlc" -c user.name=pack -c user.email=pack@localhost \
		tag -a lua-resty-mlc-0.2.0 -m "lua-resty-mlc 0.2.0 (trial)"
	url="git+file://$tmp/mlc" tag=lua-resty-mlc-0.2.0 out=${3:-$root/b-pack}
fi
name=$(basename "${url%.git}")
sed -e "s|@URL@|$url|" -e "s|@TAG@|$tag|" -e "s|@DIR@|$name/lua|" \
	"$here/$spec" >"$tmp/$spec"
mkdir -p "$out"
cp "$tmp/$spec" "$out/$spec"
(cd "$out" && luarocks pack "$tmp/$spec")
ls -l "$out"/lua-resty-mlc-0.2.0-1.src.rock
