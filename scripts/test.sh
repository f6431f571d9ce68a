#!/usr/bin/env bash
# The test command, one command on a fresh Debian 12: install dependencies, build,
# run the whole suite (unit, integration, end-to-end) with ctest, then the clang
# thread-safety build, then the fuzz targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
RC_TOOLS_DIR="$build/tools" "$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "${JOBS:-2}" --timeout 300
# Then the lock annotations enforced: every library and binary (not the tests) built again
# with clang and -Werror=thread-safety into build-tsa/ (scripts/thread_safety_build.sh; fails
# on any thread-safety error). THREAD_SAFETY_BUILD=0 skips it.
if [ "${THREAD_SAFETY_BUILD:-1}" != 0 ]; then
  "$root/scripts/thread_safety_build.sh"
fi
# Then every libFuzzer target briefly from its seed corpus (clang, into build-fuzz/; longer
# runs by hand: scripts/fuzz.sh 600). FUZZ_SECONDS=0 skips them.
if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  "$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-15}"
fi
