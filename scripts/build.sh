#!/usr/bin/env bash
# Configures and builds into build/ (ccache when present, -j2 by default).
# usage: scripts/build.sh [extra cmake args...]   env: JOBS (default 2), BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
