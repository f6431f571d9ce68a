#!/usr/bin/env bash
# Workflows on the real binaries (DESIGN.md "Workflows", issue 14): tasks that call the
# cluster through RETIRE_CLUSTER_* with the unchanged CLI, a three-level chain on a
# one-slot worker (slot lending), a fan-out of 50 children, cancel of a parent (and
# parent_close abandon), after ok/any/notok with cascades and refusals, kill -9 of the
# coordinator with a pending DAG, a child submitted from a bwrap-contained task, and task
# tokens refused outside their subtree and after their attempt ended.
# usage: workflow_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
clibin="$build/client/retire-cluster"
# Every wait is short and bounded, so a broken behaviour fails its checks in seconds instead of
# running into ctest's timeout: each CLI call is cut off after $cli_limit seconds (a --wait call
# sets a larger one, above its task's own --timeout), and each part of the test has a time budget
# that no "eventually" goes past.
cli() { timeout "${cli_limit:-15}" "$clibin" --coordinator "$RC_ADDR" "$@"; }
field() { cli get "$1" --json 2>/dev/null | jq -r "$2"; }
status_is() { [ "$(field "$1" .status)" = "$2" ]; }
children_are() { [ "$(cli list --parent "$1" --json | jq '.tasks | length')" = "$2" ]; }
fatal() { echo "$passed passed, $((failed + 1)) failed (stopped: $1)" >&2; exit 1; }

cat >"$RC_TMP/main.yaml" <<'YAML'
heartbeat_interval_seconds: 0.5
offline_after_seconds: 3
reconnect_grace_seconds: 5
log_level: warn
YAML
printf 'reconnect_initial_seconds: 0.1\nreconnect_max_seconds: 0.5\nlog_level: warn\n' >"$RC_TMP/worker.yaml"
check "coordinator starts" rc_start_main "$build" --config "$RC_TMP/main.yaml" || fatal "no coordinator"
check "a one-slot worker joins" rc_start_worker "$build" w1 --slots 1 --allow command --config "$RC_TMP/worker.yaml" \
  || fatal "no worker"

# Scripts the tasks run. Inside a task the CLI gets no --coordinator: it must find the
# cluster through RETIRE_CLUSTER_COORDINATOR and RETIRE_CLUSTER_TOKEN alone.
cat >"$RC_TMP/level.sh" <<'SH'
#!/bin/sh
# level.sh CLI N: this task, then (N > 1) a child running level.sh N-1, waited for.
cli=$1 n=$2
if [ "$n" -gt 1 ]; then
  payload="{\"argv\": [\"$0\", \"$cli\", \"$((n - 1))\"]}"
  "$cli" submit command --payload "$payload" --timeout 20 --max-retries 0 --wait >/dev/null || exit 1
fi
echo "level $n done"
SH
cat >"$RC_TMP/fan.sh" <<'SH'
#!/bin/sh
# fan.sh CLI JQ N: N echo children {"i": k}, then waits for each and prints the sum of "i".
cli=$1 jq=$2 n=$3 ids="" i=0 sum=0
while [ "$i" -lt "$n" ]; do
  id=$("$cli" submit echo --payload "{\"i\": $i}") || exit 1
  ids="$ids $id"
  i=$((i + 1))
done
for id in $ids; do
  v=$("$cli" wait "$id" --timeout 20 --json | "$jq" -r .result.i) || exit 1
  sum=$((sum + v))
done
echo "sum $sum"
SH
cat >"$RC_TMP/cancel.sh" <<'SH'
#!/bin/sh
# cancel.sh CLI: two long children and one abandoned short one, then waits on the first.
cli=$1
first=$("$cli" submit sleep --payload '{"duration": 60}' --metadata role=cancel) || exit 1
"$cli" submit sleep --payload '{"duration": 60}' --metadata role=cancel >/dev/null || exit 1
"$cli" submit sleep --payload '{"duration": 0.5}' --parent-close abandon --metadata role=abandon >/dev/null || exit 1
"$cli" wait "$first" --timeout 30
SH
chmod +x "$RC_TMP"/*.sh
command_payload() { jq -cn --args '{argv: $ARGS.positional}' "$@"; }

# --- 1. a three-level chain on one slot ----------------------------------------------
part "a three-level chain" 30
out=$(cli_limit=25 cli submit command --payload "$(command_payload "$RC_TMP/level.sh" "$clibin" 3)" --timeout 20 \
  --max-retries 0 --wait --json 2>"$RC_TMP/chain.err")
chain_ended_well() {
  jqe '.status == "success" and .stdout == "level 3 done\n"' <<<"$out" && return 0
  printf 'the chain: %s\n%s\n' "$(jq -c '{status, error_message, stderr}' <<<"$out")" "$(cat "$RC_TMP/chain.err")" >&2
  return 1
}
check "a three-level chain (each waits for its child) ends success on a one-slot worker" chain_ended_well
top=$(jq -r .task_id <<<"$out")
tree=$(cli tree "$top" --json)
check "tree --json nests the chain: root, child, grandchild, all success" jqe '
  .status == "success" and .depth == 0 and (.children | length) == 1 and
  .children[0].status == "success" and .children[0].depth == 1 and .children[0].parent_task_id == .task_id and
  (.children[0].children | length) == 1 and .children[0].children[0].depth == 2 and
  .children[0].children[0].root_task_id == .task_id and
  .children[0].children[0].ancestor_task_ids == [.task_id, .children[0].task_id]' <<<"$tree"
check "tree prints the chain indented with statuses" \
  grep -qE "^    task-[^ ]+  success  command$" <(cli tree "$top")
check "the worker had one slot" \
  jqe '.workers[] | select(.device_id == "w1") | .slots == 1' <<<"$(cli workers --json)"

# --- 2. a fan-out of 50 children, results summed --------------------------------------
part "a fan-out of 50" 55
out=$(cli_limit=50 cli submit command --payload "$(command_payload "$RC_TMP/fan.sh" "$clibin" "$(command -v jq)" 50)" \
  --timeout 45 --max-retries 0 --wait --json)
check "one parent fans out 50 children and sums their results (1225)" \
  jqe '.status == "success" and .stdout == "sum 1225\n"' <<<"$out"
fan=$(jq -r .task_id <<<"$out")
check "list --parent lists the 50 children" children_are "$fan" 50
check "GET /tasks?parent= lists them too, each a child of depth 1" jqe --arg p "$fan" \
  '(.tasks | length) == 50 and all(.tasks[]; .parent_task_id == $p and .depth == 1 and .root_task_id == $p)' \
  <<<"$(curl -s --max-time 20 "http://$RC_HTTP/tasks?parent=$fan&limit=1000")"

# --- 3. cancel of a parent cancels its children, except an abandoned one -------------
part "cancel of a parent" 25
parent=$(cli submit command --payload "$(command_payload "$RC_TMP/cancel.sh" "$clibin")" --timeout 30 --max-retries 0)
check "the parent submitted its three children" eventually 20 children_are "$parent" 3
running_first() { cli list --parent "$parent" --json | jqe '[.tasks[] | select(.status == "running")] | length == 1'; }
check "its first child runs in the parent's lent slot" eventually 20 running_first
check "cancel the parent" cli cancel "$parent"
kids=$(cli list --parent "$parent" --json)
cancel_ids=$(jq -r '.tasks[] | select(.metadata.role == "cancel") | .task_id' <<<"$kids")
abandon_id=$(jq -r '.tasks[] | select(.metadata.role == "abandon") | .task_id' <<<"$kids")
for id in $cancel_ids; do check "child $id ends cancelled with its parent" eventually 10 status_is "$id" cancelled; done
check "the abandoned child runs on and ends success" eventually 20 status_is "$abandon_id" success
check "the parent ended cancelled" status_is "$parent" cancelled

# --- 4. after ok / any / notok ----------------------------------------------------------
part "after ok/any/notok" 30
a=$(cli submit sleep --payload '{"duration": 3}')
b=$(cli submit command --payload '{"command": "exit 3"}' --max-retries 0)
ok_a=$(cli submit echo --after "$a" --payload '{"x": "ok_a"}')
check "a dependent is pending, waiting for its dependency" \
  jqe --arg a "$a" '.status == "pending" and .waiting_for == [$a] and .after == [{task_id: $a, condition: "ok"}]' \
  <<<"$(cli get "$ok_a" --json)"
ok_b=$(cli submit echo --after "$b:ok")
chained=$(cli submit echo --after "$ok_b")
any_b=$(cli submit echo --after "$b:any")
notok_b=$(cli submit echo --after "$b:notok")
notok_a=$(cli submit echo --after "$a:notok")
both=$(cli submit echo --after "$a" --after "$b:any" --payload '{"x": "both"}')
check "afterok of a success runs" eventually 20 status_is "$ok_a" success
check "... with its own result" [ "$(field "$ok_a" .result.x)" = ok_a ]
check "afterok of a failure ends cancelled" eventually 20 status_is "$ok_b" cancelled
check "... naming the dependency and how it ended" \
  jqe --arg b "$b" '.error_message | contains($b) and contains("failed")' <<<"$(cli get "$ok_b" --json)"
check "the cancel cascades down the graph" eventually 20 status_is "$chained" cancelled
check "afterany of a failure runs" eventually 20 status_is "$any_b" success
check "afternotok of a failure runs" eventually 20 status_is "$notok_b" success
check "afternotok of a success ends cancelled" eventually 20 status_is "$notok_a" cancelled
check "two dependencies (ok and any) both met: runs" eventually 20 status_is "$both" success
expect "an unknown dependency is refused naming it" 2 "task-0000dead" cli submit echo --after task-0000dead
expect "a bad condition is refused naming it" 2 "expected ok, any or notok, got 'maybe'" \
  cli submit echo --after "$a:maybe"
expect "a bad parent_close is refused naming it" 2 "--parent-close: expected cancel or abandon, got 'never'" \
  cli submit echo --parent-close never
http_post() { curl -s --max-time 20 -w '\n%{http_code}' -H 'Content-Type: application/json' -d "$2" "http://$RC_HTTP$1"; }
out=$(http_post /tasks "{\"task_type\": \"echo\", \"after\": [{\"task_id\": \"$a\", \"condition\": \"x\"}]}")
check "HTTP: a bad condition is 400 naming the entry" \
  [ "$out" = "$(printf '{"error":"after[0].condition: expected ok, any or notok, got '"'"'x'"'"'"}\n400')" ]
out=$(http_post /tasks/batch '{"tasks": [{"task_type": "echo", "payload": {"n": 1}},
  {"task_type": "echo", "payload": {"n": 2}, "after": [{"after_index": 0, "condition": "ok"}]}]}')
first=$(head -1 <<<"$out" | jq -r '.tasks[0].task_id')
second=$(head -1 <<<"$out" | jq -r '.tasks[1].task_id')
check "HTTP batch: after_index names an earlier entry (201)" [ "$(tail -1 <<<"$out")" = 201 ]
check "... stored as that entry's id" jqe --arg f "$first" '.after[0].task_id == $f' <<<"$(cli get "$second" --json)"
check "... and it runs after it" eventually 20 status_is "$second" success
out=$(http_post /tasks/batch '{"tasks": [{"task_type": "echo", "after": [{"after_index": 1}]},
  {"task_type": "echo", "after": [{"after_index": 0}]}]}')
# The entry (or, if the core refuses whole batches with a bad graph, the batch) is refused.
check "HTTP batch: a forward after_index (a cycle) is refused, naming after_index" \
  jqe '(.tasks[0].error // .error // "") | test("after_index")' <<<"$(head -1 <<<"$out")"
check "... and the entry was not stored" jqe '(.tasks[0].task_id // null) == null' <<<"$(head -1 <<<"$out")"

# --- 5. kill -9 of the coordinator with a pending DAG ----------------------------------
part "kill -9 of the coordinator with a pending DAG" 30
blocker=$(cli submit sleep --payload '{"duration": 4}')
d1=$(cli submit echo --after "$blocker" --payload '{"d": 1}')
d2=$(cli submit echo --after "$d1" --payload '{"d": 2}')
d3=$(cli submit echo --after "$blocker:notok" --payload '{"d": 3}')
check "the blocker runs before the crash" eventually 10 status_is "$blocker" running
kill -KILL "$RC_MAIN_PID"
wait "$RC_MAIN_PID" 2>/dev/null
check "the coordinator restarts on the same data dir" rc_start_main "$build" --config "$RC_TMP/main.yaml" \
  || fatal "no coordinator after the restart"
check "after the restart d2 is still pending, waiting for d1" \
  jqe --arg d "$d1" '.status == "pending" and .waiting_for == [$d]' <<<"$(cli get "$d2" --json)"
check "the DAG resolves after the restart: d1" eventually 20 status_is "$d1" success
check "... d2" eventually 10 status_is "$d2" success
check "... d3 (afternotok of a success) cancelled" eventually 10 status_is "$d3" cancelled
check "... d2's result" [ "$(field "$d2" .result.d)" = 2 ]

# --- 6. task tokens: only the own subtree, only while the attempt runs ----------------
part "task tokens" 30
other=$(cli submit echo --payload '{"o": 1}')
probe=$(jq -cn --arg cli "$clibin" --arg other "$other" '{argv: ["/bin/sh", "-c",
  ("printf \"%s\\n%s\\n\" \"$RETIRE_CLUSTER_TOKEN\" \"$RETIRE_CLUSTER_TASK_ID\"; \"" + $cli + "\" get " + $other +
   " >/dev/null 2>&1; echo \"other=$?\"; \"" + $cli + "\" stats >/dev/null 2>&1; echo \"stats=$?\"")]}')
out=$(cli_limit=25 cli submit command --payload "$probe" --timeout 20 --max-retries 0 --wait --json)
token=$(jq -r '.stdout | split("\n")[0]' <<<"$out")
probe_id=$(jq -r .task_id <<<"$out")
check "the task saw its token and its own id" \
  jqe --arg id "$probe_id" '(.stdout | split("\n")[1]) == $id and (.stdout | split("\n")[0] | startswith("rct1."))' <<<"$out"
check "its token could not read a task outside its subtree (exit 6)" jqe '.stdout | contains("other=6")' <<<"$out"
check "nor read the cluster's stats (exit 6)" jqe '.stdout | contains("stats=6")' <<<"$out"
check "no task view shows the token's digest" \
  jqe 'has("attempt_token_sha256") | not' <<<"$(cli get "$probe_id" --json)"
stored() { cli list --limit 10000 --json | jq '.tasks | length'; }
before=$(stored)
expect "the token after its attempt ended is refused" 6 "" cli --token "$token" submit echo
expect "... for reads too" 6 "" cli --token "$token" get "$probe_id"
unchanged() { [ -n "$before" ] && [ "$(stored)" = "$before" ]; }
check "... and nothing was stored" unchanged

# --- 7. a child submitted from a bwrap-contained task --------------------------------
part "a child from a bwrap-contained task" 30
if bwrap --ro-bind / / --unshare-user --unshare-pid --unshare-net true 2>"$RC_TMP/bwrap.err"; then
  check "a bwrap worker joins" rc_start_worker "$build" boxed --containment bwrap --allow command --tags boxed \
    --config "$RC_TMP/worker.yaml"
  boxed=$(jq -cn --arg cli "$clibin" '{argv: [$cli, "submit", "echo", "--payload", "{\"from\": \"box\"}", "--wait", "--json"]}')
  out=$(cli_limit=25 cli submit command --tag boxed --payload "$boxed" --timeout 20 --max-retries 0 --wait --json)
  check "a contained task (no network) submits a child and waits for it" \
    jqe '.status == "success" and .worker_device_id == "boxed" and (.stdout | fromjson | .result.from == "box")' <<<"$out"
  check "... the child records its parent" \
    jqe --arg p "$(jq -r .task_id <<<"$out")" '.parent_task_id == $p' <<<"$(jq -r .stdout <<<"$out")"
else
  echo "SKIPPED part 7 (bwrap-contained child): bwrap sandboxes do not work here: $(cat "$RC_TMP/bwrap.err")"
fi

echo "${SECONDS}s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
