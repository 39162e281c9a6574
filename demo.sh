#!/usr/bin/env bash
# Set up everything (Debian packages, build) and run the demo.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec build/mlc-demo "$@"
