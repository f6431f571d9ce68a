#!/usr/bin/env bash
# Quick start, one command on a fresh Debian 12: install dependencies, build the four
# binaries (not the tests or benchmarks), start a local cluster (coordinator + 2 workers on
# 127.0.0.1), run real tasks, print results and the cluster status, stop it cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
BUILD_TARGETS="retire-cluster-main retire-cluster-worker retire-cluster retire-cluster-status" \
  "$root/scripts/build.sh"
"$root/scripts/demo.sh" "${BUILD_DIR:-$root/build}"
