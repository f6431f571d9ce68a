#!/usr/bin/env bash
# End-to-end checks on the real binaries: --help/--version, config and flag errors,
# a task through the real processes, clean SIGTERM of each.
# usage: binaries_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
main="$build/coordinator/retire-cluster-main"
worker="$build/worker/retire-cluster-worker"
cli="$build/client/retire-cluster"
status="$build/client/retire-cluster-status"
bench="$build/bench/retire-cluster-bench"
for bin in "$main" "$worker" "$cli" "$status" "$bench"; do
  name=$(basename "$bin")
  expect "$name --help" 0 "usage: $name" "$bin" --help
  expect "$name --version" 0 "^$name [0-9]+\.[0-9]+\.[0-9]+$" "$bin" --version
done

printf 'port: [1, 2\n' >"$RC_TMP/broken.yaml"
printf 'port: 8080\nheartbeat_interval_seconds: -1\n' >"$RC_TMP/negative.yaml"
printf 'slots: lots\n' >"$RC_TMP/worker.yaml"
expect "main: malformed YAML" 2 "broken.yaml: not valid YAML" "$main" --config "$RC_TMP/broken.yaml"
expect "main: bad value names the key" 2 "heartbeat_interval_seconds: must be greater than 0" \
  "$main" --config "$RC_TMP/negative.yaml"
expect "main: missing config" 2 "cannot read /nonexistent.yaml" "$main" --config /nonexistent.yaml
expect "main: bad port flag" 2 "port: must be 0..65535, got 99999" "$main" --port 99999
expect "main: unknown flag" 2 "unknown flag --prot" "$main" --prot 1
touch "$RC_TMP/a-file"
expect "main: unusable data dir" 1 "cannot create data dir $RC_TMP/a-file/data" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/a-file/data"
mkdir -p "$RC_TMP/corrupt" && head -c 8192 /dev/urandom >"$RC_TMP/corrupt/tasks.db"
expect "main: corrupt data dir" 1 "$RC_TMP/corrupt/tasks.db: .*not a usable retire-cluster database" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/corrupt"
expect "worker: bad slots in file" 2 "worker.yaml: key 'slots': expected an integer, got 'lots'" \
  "$worker" --config "$RC_TMP/worker.yaml"
expect "worker: bad join address" 2 "join: expected HOST:PORT, got 'nowhere'" "$worker" --join nowhere
expect "worker: allow of an unknown type" 2 "allow: task type 'frobnicate' is not available" \
  "$worker" --join 127.0.0.1:1 --allow frobnicate
expect "cli: unreachable coordinator" 4 "cannot reach coordinator at 127.0.0.1:1" "$cli" --coordinator 127.0.0.1:1 stats
expect "status: unreachable coordinator" 4 "cannot reach coordinator at 127.0.0.1:1" "$status" 127.0.0.1:1
expect "cli: no command" 2 "usage: retire-cluster" "$cli"
expect "main: bad log format" 2 "log_format: unknown format 'xml' \(text or json\)" "$main" --log-format xml
json_logs() {
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/json-data" --log-format json \
    >/dev/null 2>"$RC_TMP/json.log" &
  local pid=$!
  for _ in $(seq 50); do grep -q listening "$RC_TMP/json.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3
  kill -TERM $pid; wait $pid
  [ -s "$RC_TMP/json.log" ] && jq -e -s 'length > 1 and all(.[]; has("time") and has("level") and has("msg"))' \
    "$RC_TMP/json.log" >/dev/null
}
check "--log-format json writes one JSON object per line" json_logs

printf 'reconnect_grace_seconds: 0.5\nlog_level: warn\n' >"$RC_TMP/main.yaml"
check "coordinator starts" rc_start_main "$build" --config "$RC_TMP/main.yaml"
expect "main: data dir in use" 1 "main-data/tasks.db is in use by another retire-cluster-main" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/main-data"
printf 'drain_grace_seconds: 1\n' >"$RC_TMP/w1.yaml"
check "worker w1 joins" rc_start_worker "$build" w1 --tags fast --slots 2 --config "$RC_TMP/w1.yaml"
w1=$RC_LAST_WORKER_PID
check "worker w2 joins" rc_start_worker "$build" w2 --role compute --slots 1
w2=$RC_LAST_WORKER_PID
expect "echo through the real binaries" 0 '"message": "e2e"' \
  "$cli" --coordinator "$RC_ADDR" submit echo --payload '{"message":"e2e"}' --tag fast --wait --json
expect "role-routed task lands on w2" 0 '"worker_device_id": "w2"' \
  "$cli" --coordinator "$RC_ADDR" submit echo --role compute --wait --json
expect "bench against the real cluster" 0 '"succeeded":200,"failed":0' \
  "$bench" --coordinator "$RC_ADDR" --tasks 200 --concurrency 4 --json
expect "status --device" 0 "device_id: +w1" "$status" "$RC_ADDR" --device w1
expect "invalid payload" 2 "--payload is not valid JSON" "$cli" --coordinator "$RC_ADDR" submit echo --payload '{x'
expect "unknown priority" 2 "unknown priority 'asap'" "$cli" --coordinator "$RC_ADDR" submit echo --priority asap
expect "negative timeout" 2 "timeout_seconds: must be greater than 0" \
  "$cli" --coordinator "$RC_ADDR" submit echo --timeout -1
expect "unknown task id" 3 "no task with id 'task-missing'" "$cli" --coordinator "$RC_ADDR" get task-missing

# A worker stopped with SIGTERM drains: a task that ends within its drain grace (1 s
# for w1) finishes there; a longer one is handed back at once and, as only w1 has tag
# fast, waits (saying why) until w1 comes back under the same device id.
id=$("$cli" --coordinator "$RC_ADDR" submit sleep --payload '{"duration":1}' --device w2 --max-retries 0)
quick=$("$cli" --coordinator "$RC_ADDR" submit sleep --payload '{"duration":0.1}' --tag fast)
long=$("$cli" --coordinator "$RC_ADDR" submit sleep --payload '{"duration":5}' --tag fast)
running() { "$cli" --coordinator "$RC_ADDR" get "$1" | grep -q '^status: *running'; }
for _ in $(seq 50); do running "$long" && break; sleep 0.05; done
check "SIGTERM stops a busy worker cleanly" rc_stop "$w1"
expect "the task that fit the drain grace finished on w1" 0 '^status: +success' \
  "$cli" --coordinator "$RC_ADDR" get "$quick"
expect "... in one attempt" 0 '^attempts: +1$' "$cli" --coordinator "$RC_ADDR" get "$quick"
requeued() {
  for _ in $(seq 50); do
    "$cli" --coordinator "$RC_ADDR" get "$long" | grep -q "unschedulable_reason: .*w2 lacks tag 'fast'" && return 0
    sleep 0.1
  done
  "$cli" --coordinator "$RC_ADDR" get "$long" >&2
  return 1
}
check "the stopped worker's task is requeued, saying why it waits" requeued
check "worker w1 restarts under the same id" rc_start_worker "$build" w1 --tags fast --slots 2 --config "$RC_TMP/w1.yaml"
w1=$RC_LAST_WORKER_PID
expect "the requeued task runs as attempt 2" 0 '"attempts": 2' \
  "$cli" --coordinator "$RC_ADDR" wait "$long" --timeout 20 --json
expect "one entry per device id" 0 '^2$' bash -c "'$cli' --coordinator $RC_ADDR workers --json | grep -c '\"device_id\"'"
expect "the other worker's task is unaffected" 0 '"status": "success"' \
  "$cli" --coordinator "$RC_ADDR" wait "$id" --timeout 20 --json
# Both plugin kinds from a plugin dir, through the real binaries, only where allowed.
check "worker with plugins joins" rc_start_worker "$build" plug --plugin-dir "$build/plugins" \
  --allow word_count,reverse_text,command
plug=$RC_LAST_WORKER_PID
expect "executable plugin runs" 0 '"words": 3' \
  "$cli" --coordinator "$RC_ADDR" submit word_count --payload '{"text":"a b c"}' --wait --json
expect "shared-library plugin runs" 0 '"reversed": "olleh"' \
  "$cli" --coordinator "$RC_ADDR" submit reverse_text --payload '{"text":"hello"}' --wait --json
expect "command runs where allowed" 0 '"stdout": "hi\\n"' \
  "$cli" --coordinator "$RC_ADDR" submit command --payload '{"command":"echo hi"}' --wait --json
expect "a plugin type not allowed is not advertised" 0 '^0$' \
  bash -c "'$cli' --coordinator $RC_ADDR workers --json | jq '[.workers[] | select(.device_id != \"plug\") | .task_types[] | select(. == \"word_count\")] | length'"
expect "allow of a plugin that is not there" 2 "allow: task type 'nope' is not available on this worker" \
  "$worker" --join 127.0.0.1:1 --plugin-dir "$build/plugins" --allow nope
check "SIGTERM stops the plugin worker cleanly" rc_stop "$plug"
check "SIGTERM stops an idle worker cleanly" rc_stop "$w2"
check "SIGTERM stops the restarted worker cleanly" rc_stop "$w1"
check "SIGTERM stops the coordinator cleanly" rc_stop "$RC_MAIN_PID"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
