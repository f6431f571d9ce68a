#!/usr/bin/env bash
# Durability under repeated crashes: submits several thousand echo tasks while the
# coordinator is killed with SIGKILL and restarted on the same data dir N times, then
# checks that every acknowledged task ended `success` exactly once with its own result.
# A waiter (chaos_waiter.py) waits for every acknowledged task throughout and records the
# outcome it was given, as soon as it was given: results reach waiters before their own
# commit (issue 18), so some are seen just before a crash loses their record. Each must
# be the stored outcome at the end (same attempt, worker and result), and after each
# restart the script counts the results seen before the kill that the restarted
# coordinator did not have yet (their workers send them again).
# usage: bench/restart_chaos.sh [BUILD_DIR] [CYCLES=20] [TASKS=3000]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
cycles=${2:-20}
tasks=${3:-3000}
source "$here/../scripts/lib.sh"
cli() { "$build/client/retire-cluster" --coordinator "$RC_ADDR" "$@"; }

printf 'heartbeat_interval_seconds: 0.5\noffline_after_seconds: 3\nreconnect_grace_seconds: 3\nlog_level: warn\n' \
  >"$RC_TMP/main.yaml"
printf 'reconnect_initial_seconds: 0.05\nreconnect_max_seconds: 0.3\nlog_level: warn\n' >"$RC_TMP/worker.yaml"
rc_start_main "$build" --config "$RC_TMP/main.yaml" || exit 1
rc_start_worker "$build" w1 --slots 4 --config "$RC_TMP/worker.yaml" || exit 1
rc_start_worker "$build" w2 --slots 4 --config "$RC_TMP/worker.yaml" || exit 1

# Submitters record "id payload-n" only for acknowledged submits; a submit that fails
# because the coordinator is down is retried, with the same idempotency key by the first
# two submitters and without one by the other two (an unkeyed submit placed on a free
# worker runs while it commits: a retry may store a second task for the same n, which
# must then succeed too; it is counted, not an error).
submitter() {
  local from=$1 to=$2 out=$3 keyed=$4
  for n in $(seq "$from" "$to"); do
    local key=()
    [ "$keyed" = 1 ] && key=(--idempotency-key "chaos-$n")
    for _ in $(seq 200); do
      if id=$(cli submit echo --payload "{\"n\":$n}" "${key[@]}" 2>/dev/null); then
        echo "$id $n" >>"$out"
        break
      fi
      sleep 0.05
    done
  done
}
per=$((tasks / 4))
for k in 0 1 2 3; do
  submitter $((k * per + 1)) $(((k + 1) * per)) "$RC_TMP/acked.$k" $((k < 2)) &
  subs+=($!)
done

: >"$RC_TMP/seen"
PYTHONPATH="$here/../python" /usr/bin/python3 "$here/chaos_waiter.py" "$RC_ADDR" "$RC_TMP/acked.*" "$RC_TMP/seen" \
  "$RC_TMP/stop" 2>"$RC_TMP/waiter.log" &
waiter=$!
RC_PIDS+=("$waiter")

start=$(date +%s)
reverted=0
for c in $(seq "$cycles"); do
  sleep 0.$((RANDOM % 5 + 3))
  kill -KILL "$RC_MAIN_PID"
  wait "$RC_MAIN_PID" 2>/dev/null
  cp "$RC_TMP/seen" "$RC_TMP/seen.before"
  rc_start_main "$build" --config "$RC_TMP/main.yaml" >/dev/null || { echo "restart $c failed"; exit 1; }
  # Seen ended before the kill, not ended in the restarted coordinator: its result was
  # delivered before its commit; its worker sends it again.
  back=$(cli list --limit 10000 --json 2>/dev/null | jq -r '.tasks[] | "\(.task_id) \(.status)"' |
    awk 'NR == FNR { if ($2 == "success") seen[$1] = 1; next } ($1 in seen) && $2 != "success" { n++ } END { print n + 0 }' \
      "$RC_TMP/seen.before" -)
  reverted=$((reverted + back))
  echo "cycle $c: coordinator killed and restarted ($back results seen before the kill were not stored yet)"
done
wait "${subs[@]}"
touch "$RC_TMP/stop"
cat "$RC_TMP"/acked.* >"$RC_TMP/acked"
acked=$(wc -l <"$RC_TMP/acked")

# Wait (bounded) for every task to finish.
for _ in $(seq 600); do
  left=$(cli stats --json | jq '.tasks.queued + .tasks.assigned + .tasks.running + .tasks.pending')
  [ "$left" = 0 ] && break
  sleep 0.2
done
cli list --limit 10000 --json |
  jq -r '.tasks[] | "\(.task_id) \(.status) \(.result.n) \(.attempts) \(.worker_device_id)"' >"$RC_TMP/final"
wait "$waiter"
sort -u -k1,1 "$RC_TMP/seen" >"$RC_TMP/seen.once"
waited=$(wc -l <"$RC_TMP/seen.once")
# What a waiter was given must be what is stored: same status, attempt, worker, result.
changed=$(awk 'NR == FNR { fin[$1] = $2 " " $4 " " $5 " " $3; next }
               { want = $2 " " $3 " " $4 " " $5 } !($1 in fin) || fin[$1] != want { n++ } END { print n + 0 }' \
  "$RC_TMP/final" "$RC_TMP/seen")
total=$(wc -l <"$RC_TMP/final")
success=$(awk '$2 == "success"' "$RC_TMP/final" | wc -l)
dup_ids=$(cut -d' ' -f1 "$RC_TMP/final" | sort | uniq -d | wc -l)
dup_acks=$(cut -d' ' -f1 "$RC_TMP/acked" | sort | uniq -d | wc -l)
# Each acknowledged id must be there, succeeded, with its own payload's n as result.
wrong=$(awk 'NR == FNR { want[$1] = $2; next } ($1 in want) && ($2 != "success" || $3 != want[$1]) { bad++ }
             END { print bad + 0 }' "$RC_TMP/acked" "$RC_TMP/final")
missing=$(awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { miss++ } END { print miss + 0 }' \
  "$RC_TMP/final" "$RC_TMP/acked")
retried=$(awk '$4 > 1' "$RC_TMP/final" | wc -l)
# Stored tasks no submit was acknowledged for: an unkeyed submit whose answer the crash
# cut off, then retried. Keyed ones (n up to 2 x per) must have none.
extra=$(awk 'NR == FNR { acked[$1] = 1; next } !($1 in acked) { n++ } END { print n + 0 }' "$RC_TMP/acked" "$RC_TMP/final")
extra_keyed=$(awk -v keyed=$((2 * per)) 'NR == FNR { acked[$1] = 1; next } !($1 in acked) && $3 <= keyed { n++ }
                   END { print n + 0 }' "$RC_TMP/acked" "$RC_TMP/final")
echo "cycles=$cycles seconds=$(( $(date +%s) - start )) submitted=$tasks acknowledged=$acked tasks=$total" \
     "success=$success missing=$missing wrong_or_unfinished=$wrong duplicate_ids=$dup_ids" \
     "duplicate_acks=$dup_acks rerun_after_crash=$retried unacknowledged_stored=$extra (keyed: $extra_keyed)"
echo "waited=$waited seen_then_changed=$changed seen_before_a_kill_not_yet_stored=$reverted"
[ "$acked" -eq "$tasks" ] && [ "$total" -eq $((tasks + extra)) ] && [ "$success" -eq "$total" ] &&
  [ "$missing" -eq 0 ] && [ "$extra_keyed" -eq 0 ] &&
  [ "$wrong" -eq 0 ] && [ "$dup_ids" -eq 0 ] && [ "$waited" -eq "$acked" ] && [ "$changed" -eq 0 ]
