#!/usr/bin/env bash
# Live CPU and memory of a running task on the real binaries: a `command` task's process
# group is sampled every second by its worker; `retire-cluster get` prints it as a
# `usage: ... (live)` line, `get --json` and HTTP GET /tasks/{id} show the same sample
# (pid, cpu_percent, memory_bytes, sampled_at), it is refreshed while the task runs, and it
# is gone (pid 0, sampled_at null) once the task has ended.
# usage: live_usage_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
cli="$build/client/retire-cluster"
get() { "$cli" --coordinator "$RC_ADDR" get "$@"; }

rc_start_main "$build" --log-level warn || exit 1
rc_start_worker "$build" w1 --allow command || exit 1

part "a busy command shows live usage" 60
id=$("$cli" --coordinator "$RC_ADDR" submit command --payload '{"command": "while :; do :; done"}' \
  --timeout 120 --json | jq -r .task_id)
check "the task was accepted" test -n "$id"
live() { get "$id" | grep -qE '^usage: +pid [0-9]+, cpu [0-9.]+%, memory [0-9.]+ MiB, cpu time [0-9.]+s \(live\)$'; }
check "get prints a live usage line" eventually 20 live
first=$(get "$id" --json)
pid=$(jq -r .resource_usage.pid <<<"$first")
check "the pid is the task's running process" kill -0 "$pid"
check "the sample has CPU, memory and its time" \
  jqe '.status == "running" and .resource_usage.cpu_percent > 0 and .resource_usage.memory_bytes > 0
       and .resource_usage.cpu_seconds > 0 and (.resource_usage.sampled_at | test("^20[0-9-]+T[0-9:.]+Z$"))' \
  <<<"$first"
newer() {
  get "$id" --json | jqe --arg t "$(jq -r .resource_usage.sampled_at <<<"$first")" \
    '.resource_usage.sampled_at > $t and .resource_usage.pid > 0'
}
check "the sample is refreshed while the task runs" eventually 10 newer
http_usage() {
  curl -sf "http://$RC_HTTP/tasks/$id" | jqe --argjson pid "$pid" \
    '.resource_usage.pid == $pid and .resource_usage.memory_bytes > 0 and .resource_usage.sampled_at != null'
}
check "HTTP GET /tasks/{id} shows the live sample" http_usage

part "the sample ends with the task" 30
"$cli" --coordinator "$RC_ADDR" cancel "$id" >/dev/null
ended() { get "$id" --json | jqe '.status == "cancelled"'; }
check "the task is cancelled" eventually 20 ended
check "an ended task shows no pid and no sample" \
  jqe '.resource_usage.pid == 0 and .resource_usage.cpu_percent == 0 and .resource_usage.memory_bytes == 0
       and .resource_usage.sampled_at == null' <<<"$(get "$id" --json)"
check "get prints no live line once it ended" bash -c "! '$cli' --coordinator '$RC_ADDR' get '$id' | grep -q '(live)'"
gone() { ! kill -0 "$pid" 2>/dev/null; }
check "its process is gone" eventually 10 gone

part "a finished task keeps its totals" 30
done_id=$("$cli" --coordinator "$RC_ADDR" submit command --payload '{"command": "sleep 1.5"}' --wait --json | jq -r .task_id)
check "a finished command shows its totals without a live sample" \
  jqe '.status == "success" and .resource_usage.peak_rss_bytes > 0 and .resource_usage.sampled_at == null
       and .resource_usage.pid == 0' <<<"$(get "$done_id" --json)"
expect "get prints its totals" 0 "^usage: +(cpu time [0-9.]+s, )?peak memory [0-9.]+ MiB$" get "$done_id"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
