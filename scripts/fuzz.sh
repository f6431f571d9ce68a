#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into build-fuzz/ and runs each for
# SECONDS (default 60), starting from the seed corpus in tests/fuzz_corpus/<target>/.
# Prints execs/s and total execs per target; exits non-zero on any crash, leak, timeout,
# out-of-memory or broken invariant, naming the input that caused it.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# env:   BUILD_DIR (default build-fuzz), JOBS (build, default 2), FUZZ_PARALLEL (targets run
#        at once, default JOBS), FUZZ_WORK (where new corpus entries and crash inputs go;
#        default a fresh temporary directory, kept when something fails)
#
# New inputs the fuzzer finds stay in FUZZ_WORK/<target>/corpus; tests/fuzz_corpus is
# never written. To keep the interesting ones (by hand, after a long run):
#   build-fuzz/fuzz/fuzz_task_json -merge=1 tests/fuzz_corpus/fuzz_task_json WORK/fuzz_task_json/corpus
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}
shift || true
all_targets=(fuzz_task_json fuzz_http_body fuzz_yaml_config fuzz_tokens fuzz_plugin_output fuzz_jsdoc)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
jobs=${JOBS:-2}
parallel=${FUZZ_PARALLEL:-$jobs}

CC=${FUZZ_CC:-clang} CXX=${FUZZ_CXX:-clang++} cmake -S "$root" -B "$build" -DRC_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/rc-fuzz.XXXXXX")}
mkdir -p "$work"

# One target: the writable corpus comes first (new inputs land there), the seeds second.
run_one() {
  local t=$1 dir="$work/$1"
  mkdir -p "$dir/corpus"
  local dict=()
  [ -f "$root/tests/fuzz_corpus/$t.dict" ] && dict=("-dict=$root/tests/fuzz_corpus/$t.dict")
  ( cd "$dir" && "$build/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$dir/" "${dict[@]}" "$dir/corpus" "$root/tests/fuzz_corpus/$t" \
      >"$dir/log" 2>&1 )
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$parallel" ]; then
    wait "${pids[0]}" || true
    pids=("${pids[@]:1}")
  fi
done
wait || true

failed=0
printf '%-20s %12s %14s %8s  %s\n' target execs/s total_execs seconds result
for t in "${targets[@]}"; do
  log="$work/$t/log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  if [ -n "$done_line" ]; then
    execs=$(echo "$done_line" | awk '{print $2}')
    secs=$(echo "$done_line" | awk '{print $5}')
  else
    secs=$seconds
  fi
  artifacts=$(ls "$work/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
  if [ -n "$artifacts" ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |fuzz invariant broken|deadly signal' "$log"; then
    result=FAILED
    failed=1
  else
    result=ok
  fi
  printf '%-20s %12s %14s %8s  %s\n' "$t" "${rate:-?}" "${execs:-?}" "$secs" "$result"
  if [ "$result" = FAILED ]; then
    grep -E 'ERROR|SUMMARY|invariant|deadly|exception' "$log" | head -5 | sed 's/^/    /'
    for a in $artifacts; do echo "    input: $work/$t/$a (reproduce: $build/fuzz/$t $work/$t/$a)"; done
    echo "    log: $log"
  fi
done
if [ "$failed" != 0 ]; then
  echo "fuzzing found a problem; inputs and logs are in $work" >&2
  exit 1
fi
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
