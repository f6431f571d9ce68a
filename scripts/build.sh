#!/usr/bin/env bash
# Configures and builds into build/ (ccache when present, -j2 by default).
# usage: scripts/build.sh [extra cmake args...]
# env: JOBS (default 2), BUILD_DIR, BUILD_TARGETS (space-separated; default: everything)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "${JOBS:-2}" "${targets[@]}"
