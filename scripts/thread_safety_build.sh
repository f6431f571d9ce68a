#!/usr/bin/env bash
# Enforces the lock annotations (STYLE.md rule 7): builds every library and binary, not the
# tests, with clang and -Werror=thread-safety (cmake -DRC_THREAD_SAFETY=ON) into its own
# directory, build-tsa/. Keeps going past a failing file, so that one run lists every error,
# and fails if there was any. GCC, the default compiler, ignores the annotations. This build
# is a check, its binaries are never run, so it compiles without optimization or debug info
# (CMAKE_BUILD_TYPE=None), through ccache. Run by scripts/test.sh after ctest.
# usage: scripts/thread_safety_build.sh
# env: JOBS (default 2), TSA_BUILD_DIR (default build-tsa/ in the checkout), CXX_CLANG (default clang++)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TSA_BUILD_DIR:-$root/build-tsa}
cmake -S "$root" -B "$build" -G "Unix Makefiles" -DCMAKE_CXX_COMPILER="${CXX_CLANG:-clang++}" -DCMAKE_BUILD_TYPE=None \
  -DRC_THREAD_SAFETY=ON >/dev/null
cmake --build "$build" -j "${JOBS:-2}" -- -k
echo "thread-safety build: ok ($build)"
