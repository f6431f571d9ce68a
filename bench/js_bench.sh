#!/usr/bin/env bash
# JavaScript tasks (issue 16): warm throughput and sequential latency of an echo-like `js`
# task, and what a cold start costs. Starts its own coordinator (durable SQLite store) and
# workers with --allow js on 127.0.0.1 (ephemeral ports; scripts/lib.sh stops them on exit).
#   warm:  retire-cluster-bench --type js (each task: module.exports = async (input) => input,
#          a fresh sandbox per task; every result is compared with its input) on one worker
#          whose engine is warm, throughput and sequential round trips; the same with --type
#          echo as the cluster's own round trip without JavaScript.
#   cold:  a js task is queued for a worker that does not run yet; from the worker's exec to
#          the task's result (the engine's start included), median of COLD runs; the same with
#          an echo task (the worker's own start and join); and, on a worker already online,
#          its first js task's round trip (the engine host started on demand or at start).
# usage: bench/js_bench.sh [BUILD_DIR]
# env: N (throughput tasks, 2000), CONCURRENCY (in flight, 200), LAT (round trips, 500),
#      COLD (cold starts, 3), SLOTS (slots of the warm worker, 2), WARMUP (50)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
source "$root/scripts/lib.sh"
N=${N:-2000} CONCURRENCY=${CONCURRENCY:-200} LAT=${LAT:-500} COLD=${COLD:-3} SLOTS=${SLOTS:-2}
WARMUP=${WARMUP:-50}
bench="$build/bench/retire-cluster-bench"
clibin="$build/client/retire-cluster"
cli() { timeout 120 "$clibin" --coordinator "$RC_ADDR" "$@"; }
die() { echo "js_bench: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else print v[int((NR + 1) / 2)]}'; }
[ -d "$build/worker/js/node_modules" ] || die "$build/worker/js/node_modules is missing: build the js_engine target (needs npm)"

printf 'log_level: warn\n' >"$RC_TMP/main.yaml"
printf 'log_level: warn\n' >"$RC_TMP/worker.yaml"
rc_start_main "$build" --config "$RC_TMP/main.yaml" || die "no coordinator"
echo "# js bench at $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(git -C "$root" rev-parse --short HEAD 2>/dev/null)," \
  "node $(node --version), load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- warm ----------------------------------------------------------------------------------
rc_start_worker "$build" warm --allow js --slots "$SLOTS" --config "$RC_TMP/worker.yaml" || die "no warm worker"
run_bench() {  # run_bench LABEL ARGS...: one retire-cluster-bench run, its JSON on one line
  local label=$1; shift
  local out
  out=$(timeout 600 "$bench" --coordinator "$RC_ADDR" --warmup "$WARMUP" --json "$@") \
    || { echo "js_bench: $label: ${out:-failed}" >&2; return 1; }
  jq -c --arg name "$label" '{"run": $name} + .' <<<"$out"
}
# CPU seconds (user + system) a process and its reaped children used so far: a per-task figure
# that load from other processes barely moves.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
engine_host() {  # the warm worker's engine host (node host.js), a child or grandchild
  local p c
  for p in $(pgrep -P "$RC_LAST_WORKER_PID"); do
    for c in "$p" $(pgrep -P "$p"); do
      tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q "host\.js" && { echo "$c"; return 0; }
    done
  done
  return 1
}
warm_pid=$RC_LAST_WORKER_PID
host=$(engine_host) || die "the warm worker runs no engine host (node host.js)"
host_cpu0=$(cpu_s "$host") worker_cpu0=$(cpu_s "$warm_pid") main_cpu0=$(cpu_s "$RC_MAIN_PID")
tp_js=$(run_bench "js throughput" --type js --tasks "$N" --concurrency "$CONCURRENCY") || exit 1
per_task() { awk -v a="$1" -v b="$2" -v n="$((N + WARMUP))" 'BEGIN {printf "%.0f", (b - a) * 1e6 / n}'; }
cpu_js=$(jq -cn --argjson h "$(per_task "$host_cpu0" "$(cpu_s "$host")")" \
  --argjson w "$(per_task "$worker_cpu0" "$(cpu_s "$warm_pid")")" --argjson m "$(per_task "$main_cpu0" "$(cpu_s "$RC_MAIN_PID")")" \
  '{"run": "js throughput: CPU per task (us, warmup included)", engine_host: $h, worker: $w, coordinator: $m}')
lat_js=$(run_bench "js latency" --type js --mode latency --tasks "$LAT") || exit 1
lat_echo=$(run_bench "echo latency" --type echo --mode latency --tasks "$LAT") || exit 1
tp_echo=$(run_bench "echo throughput" --type echo --tasks "$N" --concurrency "$CONCURRENCY") || exit 1
printf '%s\n' "$tp_js" "$cpu_js" "$lat_js" "$tp_echo" "$lat_echo"

# --- cold ----------------------------------------------------------------------------------
# cold_run DEVICE TYPE PAYLOAD: queues one task pinned to DEVICE, then starts that worker and
# waits for the result; sets cold_ms to the milliseconds from the worker's start to the result.
# After an echo task it also sets first_ms: the round trip of the worker's first js task.
cold_run() {
  local device=$1 type=$2 payload=$3 id t0 pid
  id=$(cli submit "$type" --device "$device" --payload "$payload" --max-retries 0 --timeout 60) || die "submit $type"
  t0=$(now_ms)
  "$build/worker/retire-cluster-worker" --join "$RC_ADDR" --device-id "$device" --data-dir "$RC_TMP/$device" \
    --allow js --slots 1 --config "$RC_TMP/worker.yaml" 2>"$RC_TMP/$device.log" &
  pid=$!
  RC_PIDS+=("$pid")
  cli wait "$id" --timeout 60 >/dev/null 2>"$RC_TMP/wait.err" || die "cold $type task $id on $device: $(cli get "$id" 2>&1 | head -5)"
  cold_ms=$(($(now_ms) - t0))
  if [ "$type" = echo ]; then
    t0=$(now_ms)
    cli submit js --device "$device" --payload '{"code": "module.exports = async (i) => i", "input": {"first": 1}}' \
      --max-retries 0 --timeout 60 --wait >/dev/null 2>"$RC_TMP/wait.err" || die "first js task on $device"
    first_ms=$(($(now_ms) - t0))
  fi
  rc_stop "$pid" 10 || die "worker $device did not stop"
}
cold_js=() cold_echo=() first_js=()
for k in $(seq "$COLD"); do
  cold_run "cold-js-$k" js '{"code": "module.exports = async (i) => i", "input": {"cold": 1}}'
  cold_js+=("$cold_ms")
  cold_run "cold-echo-$k" echo '{"cold": 1}'
  cold_echo+=("$cold_ms") first_js+=("$first_ms")
done
list() { printf '%s\n' "$@" | jq -sc .; }
jq -cn --argjson js "$(list "${cold_js[@]}")" --argjson echo "$(list "${cold_echo[@]}")" \
  --argjson first "$(list "${first_js[@]}")" \
  '{"run": "cold start (ms)", worker_start_to_js_result: $js, worker_start_to_echo_result: $echo,
    online_worker_first_js_round_trip: $first}'

# --- summary -------------------------------------------------------------------------------
f() { jq -r "$1" <<<"$2"; }
echo
echo "| measurement | js | echo (no JavaScript) |"
echo "| --- | --- | --- |"
echo "| warm throughput, $N tasks, $CONCURRENCY in flight, $SLOTS slots (tasks/s) |" \
  "$(f '.tasks_per_second | floor' "$tp_js") | $(f '.tasks_per_second | floor' "$tp_echo") |"
echo "| warm sequential round trip p50 / p90 / p99 (ms), $LAT tasks |" \
  "$(f '.latency_ms | "\(.p50*100|round/100) / \(.p90*100|round/100) / \(.p99*100|round/100)"' "$lat_js") |" \
  "$(f '.latency_ms | "\(.p50*100|round/100) / \(.p90*100|round/100) / \(.p99*100|round/100)"' "$lat_echo") |"
echo "| cold: worker start -> first result, median of $COLD (ms) |" \
  "$(printf '%s\n' "${cold_js[@]}" | median) [$(IFS=,; echo "${cold_js[*]}")] |" \
  "$(printf '%s\n' "${cold_echo[@]}" | median) [$(IFS=,; echo "${cold_echo[*]}")] |"
echo "| CPU per js task in the throughput run (us): engine host / worker / coordinator |" \
  "$(f '"\(.engine_host) / \(.worker) / \(.coordinator)"' "$cpu_js") | - |"
echo "| first js task on a worker already online (ms), median of $COLD |" \
  "$(printf '%s\n' "${first_js[@]}" | median) [$(IFS=,; echo "${first_js[*]}")] | - |"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
