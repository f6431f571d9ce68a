#!/usr/bin/env bash
# The test command, one command on a fresh Debian 12: install dependencies, build,
# run the whole suite (unit, integration, end-to-end) with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "${JOBS:-2}" --timeout 300
