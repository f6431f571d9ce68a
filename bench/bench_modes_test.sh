#!/usr/bin/env bash
# Smoke test (not a benchmark) of retire-cluster-bench's --mode floor and --spawn-workers
# (issue 18): small runs that fail on a lost or wrong result, a missing JSON field or a
# process left running, never on a timing.
# usage: bench/bench_modes_test.sh BUILD_DIR
set -uo pipefail
BUILD=${1:?usage: $0 BUILD_DIR}
BENCH="$BUILD/bench/retire-cluster-bench"
D=$(mktemp -d /tmp/rc-bench-modes.XXXXXX)
BG=""
passed=0 failed=0

# Processes started from this test's data dir: the spawned coordinator and workers.
ours() { pgrep -f -- "$D/rc-bench" || true; }
cleanup() {
  [ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null
  for pid in $(ours); do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT

check() {  # check NAME JSON JQ_FILTER
  if jq -e "$3" >/dev/null 2>&1 <<<"$2"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1: $3 on: $2" >&2
  fi
}
none_left() {  # none_left NAME: no process of ours within 15 s
  for _ in $(seq 75); do
    [ -z "$(ours)" ] && { passed=$((passed + 1)); return; }
    sleep 0.2
  done
  failed=$((failed + 1))
  echo "FAIL: $1: processes left running: $(ours | tr '\n' ' ')" >&2
}
run() {  # run NAME ARGS...: the bench's JSON line on stdout; a nonzero exit is a failure
  local name=$1 out rc
  shift
  out=$(timeout 120 "$BENCH" --json --data-dir "$D" "$@" 2>"$D/err"); rc=$?
  if [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    echo "FAIL: $name: exit $rc: $(tail -c 2000 "$D/err")" >&2
  fi
  grep '^{' <<<"$out" | tail -n 1
}

q='has("p50") and has("p90") and has("p99") and has("max") and (.p50 > 0) and (.p50 <= .p99)'

echo "--- floor"
j=$(run floor --mode floor --floor-samples 50)
check "floor fields" "$j" ".mode == \"floor\" and (.floor_ms > 0) and
  (.floor.fsync_ms | $q) and (.floor.fsync_append_ms | $q) and (.floor.fsync_after_idle_ms | $q) and
  (.floor.grpc_unary_ms | $q) and (.floor.grpc_stream_ms | $q) and
  (.floor.filesystem | type == \"string\" and length > 0) and (.floor.mount | length > 0) and
  (.floor.fsync_file | startswith(\"$D/\"))"
check "floor_ms is fsync + 2 unary" "$j" '((.floor.fsync_ms.p50 + 2 * .floor.grpc_unary_ms.p50) - .floor_ms | fabs) < 1e-9'
check "the idle gap is 2 unary, the after-idle floor uses it" "$j" '((.floor.idle_gap_ms - 2 * .floor.grpc_unary_ms.p50) | fabs) < 1e-6 and
  ((.floor.fsync_after_idle_ms.p50 + 2 * .floor.grpc_unary_ms.p50) - .floor.floor_after_idle_ms | fabs) < 1e-9'
[ -z "$(ls -A "$D" | grep -v '^err$')" ] && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: floor left files in $D: $(ls -A "$D")" >&2; }
out=$("$BENCH" --mode floor --local-workers 1 2>&1); rc=$?
[ "$rc" -eq 2 ] && grep -q "mode floor" <<<"$out" && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: floor with a cluster flag: exit $rc: $out" >&2; }

echo "--- spawned cluster, throughput"
j=$(run spawn-throughput --spawn-workers 2 --slots 4 --tasks 500 --concurrency 200 --warmup 10)
check "all tasks right" "$j" '.succeeded == 500 and .failed == 0'
check "cpu per component" "$j" '(.cpu_us_per_task.client > 0) and (.cpu_us_per_task.coordinator > 0) and
  (.cpu_us_per_task.workers | length == 2 and all(. > 0)) and
  ((.cpu_us_per_task.total - .cpu_us_per_task.client - .cpu_us_per_task.coordinator
    - (.cpu_us_per_task.workers | add)) | fabs) < 1e-6 and .cluster_cpu_us_per_task == .cpu_us_per_task.total'
none_left "after a run"
[ -z "$(ls -A "$D" | grep -v '^err$')" ] && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: spawned cluster left files in $D: $(ls -A "$D")" >&2; }

echo "--- spawned cluster, latency with the floor"
j=$(run spawn-latency --spawn-workers 1 --slots 2 --mode latency --tasks 100 --warmup 10 --floor-samples 50)
check "latency run" "$j" '.succeeded == 100 and .failed == 0 and (.latency_ms.p50 > 0)'
check "latency floor fields" "$j" "(.floor_ms > 0) and (.floor.fsync_ms | $q) and
  ((.p50_over_floor - .latency_ms.p50 / .floor_ms) | fabs) < 1e-9 and
  ((.p50_over_floor_after_idle - .latency_ms.p50 / .floor.floor_after_idle_ms) | fabs) < 1e-9 and (.cpu_us_per_task.workers | length == 1)"
none_left "after a latency run"

echo "--- errors stop what was started"
out=$("$BENCH" --spawn-workers 1 --bin-dir "$D/nothing" --data-dir "$D" --tasks 10 2>&1); rc=$?
[ "$rc" -eq 1 ] && grep -q "bin-dir" <<<"$out" && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: missing binaries: exit $rc: $out" >&2; }
# SIGTERM in the middle of a long run: the bench stops its coordinator and workers.
"$BENCH" --spawn-workers 2 --slots 2 --data-dir "$D" --tasks 100000000 --concurrency 100 >/dev/null 2>"$D/err" &
BG=$!
for _ in $(seq 150); do
  [ "$(ours | wc -l)" -ge 3 ] && grep -qs . "$D"/rc-bench.*/main.out && break
  sleep 0.2
done
sleep 1  # into the run (past the workers coming online)
[ "$(ours | wc -l)" -ge 3 ] && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: the long run did not start 3 processes: $(cat "$D/err")" >&2; }
kill -TERM "$BG"
wait "$BG"; rc=$?
BG=""
[ "$rc" -eq 143 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: bench exit $rc after SIGTERM (want 143)" >&2; }
none_left "after SIGTERM"
[ -z "$(ls -A "$D" | grep -v '^err$')" ] && passed=$((passed + 1)) \
  || { failed=$((failed + 1)); echo "FAIL: SIGTERM left files in $D: $(ls -A "$D")" >&2; }

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
