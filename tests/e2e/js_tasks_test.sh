#!/usr/bin/env bash
# JavaScript tasks on the real binaries (DESIGN.md "JavaScript tasks", issue 16): the three
# examples of examples/js published with the CLI and run through the CLI, HTTP and the SDKs
# (the C++ SDK through retire-cluster-bench's js mode; the Python SDK's client.tasks when it
# has one); a three-level call chain and a fan-out on a one-slot worker; every escape attempt
# and every bad module failing inside the sandbox with a clear error while the worker keeps
# running js tasks; bad payloads and a publish without @task refused.
# Skips (77) when node or the engine the build installs (build/worker/js/node_modules) is missing.
# usage: js_tasks_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
examples=$(cd "$here/../../examples/js" && pwd)
if ! command -v node >/dev/null; then
  echo "SKIPPED: no node on PATH (scripts/install-deps.sh installs nodejs)"
  exit 77
fi
if [ ! -d "$build/worker/js/node_modules" ]; then
  echo "SKIPPED: $build/worker/js/node_modules is missing (the js_engine target needs npm at build time)"
  exit 77
fi
source "$here/../../scripts/lib.sh"
clibin="$build/client/retire-cluster"
# Every wait is short and bounded (as in workflow_test.sh): each CLI call is cut off after
# $cli_limit seconds and each part has a time budget no "eventually" goes past.
cli() { timeout "${cli_limit:-15}" "$clibin" --coordinator "$RC_ADDR" "$@"; }
fatal() { echo "$passed passed, $((failed + 1)) failed (stopped: $1)" >&2; exit 1; }
# http METHOD PATH [BODY]: prints the body, then the status code on a line of its own.
http() {
  local args=(-s --max-time 20 -w '\n%{http_code}' -X "$1")
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}" "http://$RC_HTTP$2"
}
body() { sed '$d' <<<"$1"; }
code() { tail -1 <<<"$1"; }
# js_payload CODE [INPUT_JSON [EXTRA_JSON]]: an inline js payload.
js_payload() {
  jq -cn --arg code "$1" --argjson input "${2:-{\}}" --argjson extra "${3:-{\}}" '{code: $code, input: $input} + $extra'
}
# run_js CODE [INPUT [EXTRA [TIMEOUT]]]: runs an inline js task to its end; prints the task's JSON.
run_js() {
  cli_limit=$((${4:-10} + 15)) cli submit js --payload "$(js_payload "$1" "${2:-{\}}" "${3:-{\}}")" \
    --timeout "${4:-10}" --max-retries 0 --wait --json
}
# shows LABEL [JQ_ARGS...] FILTER JSON: JSON passes FILTER, or the JSON is printed.
shows() {
  local label=$1; shift
  local json=${!#}
  jqe "${@:1:$#-1}" <<<"$json" && return 0
  printf '%s: %s\n' "$label" "$(jq -c 'if type == "object" and has("status") then
    {status, result, error_message, stderr, stdout} else . end' <<<"$json" 2>/dev/null || echo "$json")" >&2
  return 1
}
# http_is LABEL CODE FILTER OUT: an http answer with that status code and a body passing FILTER.
http_is() {
  [ "$(code "$4")" = "$2" ] && jqe "$3" <<<"$(body "$4")" && return 0
  printf '%s: want %s, got: %s\n' "$1" "$2" "$4" >&2
  return 1
}

cat >"$RC_TMP/main.yaml" <<'YAML'
heartbeat_interval_seconds: 0.5
offline_after_seconds: 3
log_level: warn
YAML
printf 'reconnect_initial_seconds: 0.1\nreconnect_max_seconds: 0.5\nlog_level: warn\n' >"$RC_TMP/worker.yaml"
check "coordinator starts" rc_start_main "$build" --config "$RC_TMP/main.yaml" || fatal "no coordinator"
check "a one-slot js worker joins" rc_start_worker "$build" w1 --slots 1 --allow js --config "$RC_TMP/worker.yaml" \
  || fatal "no worker"
w1_pid=$RC_LAST_WORKER_PID
check "the worker has one slot and offers js" shows "workers" \
  '.workers[] | select(.device_id == "w1") | .slots == 1 and (.task_types | index("js")) != null' \
  "$(cli workers --json)"

# --- 1. publish the examples ----------------------------------------------------------
part "publish" 30
for f in pure nested fanout; do
  out=$(cli tasks publish "$examples/$f.js" --json)
  check "publish examples/js/$f.js" shows "publish $f" '.task.version == 1 and .unchanged == false' "$out"
done
check "the name comes from @task, the JSDoc is stored" shows "show word-stats" \
  '.name == "word-stats" and .version == 1 and (.sha256 | length) == 64 and
   (.description | contains("Word statistics")) and ([.params[].name] | index("text") != null)' \
  "$(cli tasks show word-stats --json)"
check "publishing the same code again stores nothing" shows "republish" \
  '.unchanged == true and .task.version == 1' "$(cli tasks publish "$examples/pure.js" --json)"
check "tasks list shows all three" shows "list" \
  '[.tasks[].name] | (index("word-stats") and index("text-report") and index("corpus-report")) != null' \
  "$(cli tasks list --json)"
check "tasks list (text) names them" grep -q "corpus-report" <(cli tasks list)
out=$(http GET /js-tasks/text-report)
check "HTTP GET /js-tasks/text-report returns its code" http_is "GET /js-tasks/text-report" 200 \
  '.name == "text-report" and (.code | contains("context.tasks.execute"))' "$out"
sed '/@task/d' "$examples/pure.js" >"$RC_TMP/untagged.js"
expect "publish without @task is refused naming the tag" 2 "no JSDoc @task tag" cli tasks publish "$RC_TMP/untagged.js"
out=$(http POST /js-tasks "$(jq -cn --rawfile code "$RC_TMP/untagged.js" '{code: $code}')")
check "HTTP POST /js-tasks without @task is 400 naming the tag" http_is "POST untagged" 400 \
  '.error | contains("@task")' "$out"
expect "a bad --name is refused naming it" 2 "name" cli tasks publish "$examples/pure.js" --name "-bad name"
check "nothing was stored for the refusals" shows "list after refusals" '.tasks | length == 3' "$(cli tasks list --json)"

# --- 2. the examples through the CLI ----------------------------------------------------
part "the examples through the CLI" 40
text='The cat sat on the mat. The end!'
out=$(cli_limit=25 cli run word-stats --input "$(jq -cn --arg t "$text" '{text: $t}')" --timeout 10 --wait --json)
check "run word-stats (pure)" shows "word-stats" \
  '.status == "success" and .task_type == "js" and .result.words == 8 and .result.distinct == 6 and
   .result.top[0] == {word: "the", count: 3}' "$out"
check "... the stored payload names the version and the code's sha256" shows "payload" \
  '.payload.name == "word-stats" and .payload.version == 1 and (.payload.sha256 | length) == 64' \
  "$(cli get "$(jq -r .task_id <<<"$out")" --json)"
out=$(cli_limit=25 cli run text-report --input "$(jq -cn --arg t "$text" '{text: $t, title: "cat"}')" --timeout 10 \
  --wait --json)
check "run text-report (nested: calls word-stats by name)" shows "text-report" \
  '.status == "success" and .result.sentences == 2 and .result.stats.words == 8 and
   (.result.summary | startswith("cat: 8 words, 6 distinct"))' "$out"
check "... its context.log line is its stdout" shows "log" '.stdout | contains("cat: asking word-stats")' "$out"
check "... it has one child, a js task of depth 1" shows "child" \
  '.tasks | length == 1 and .[0].task_type == "js" and .[0].depth == 1 and .[0].status == "success"' \
  "$(cli list --parent "$(jq -r .task_id <<<"$out")" --json)"
out=$(cli_limit=25 cli run corpus-report --input '{"texts": ["One two. Three!", "four", "five six seven"]}' \
  --timeout 15 --wait --json)
check "run corpus-report (fan-out with Promise.all, three texts)" shows "corpus-report" \
  '.status == "success" and .result.documents == 3 and .result.words == 7 and .result.sentences == 2 and
   .result.longest == "three" and (.result.reports | length) == 3' "$out"
expect "run without --wait prints the task id" 0 "^task-" cli run word-stats --input '{"text": "a"}'
expect "run of an unknown name is refused naming it" 3 "no published task 'no-such-task'" cli run no-such-task
expect "a task that throws: exit 1 with its message" 1 "input.text: expected a string" \
  cli run word-stats --input '{"text": 5}' --timeout 10 --wait

# --- 3. the examples over HTTP ------------------------------------------------------------
part "the examples over HTTP" 40
http_run() {  # http_run NAME BODY: POST /js-tasks/NAME/run, then waits for the task; prints it
  local out id
  out=$(http POST "/js-tasks/$1/run" "$2")
  [ "$(code "$out")" = 201 ] || { echo "POST /js-tasks/$1/run: $out" >&2; return 1; }
  id=$(body "$out" | jq -r .task_id)
  curl -s --max-time 25 "http://$RC_HTTP/tasks/$id/wait?timeout=20"
}
check "POST /js-tasks/word-stats/run" shows "http word-stats" \
  '.status == "success" and .result.words == 3' "$(http_run word-stats '{"input": {"text": "a b c"}}')"
check "POST /js-tasks/text-report/run" shows "http text-report" \
  '.status == "success" and .result.title == "t" and .result.stats.distinct == 2' \
  "$(http_run text-report '{"input": {"text": "x y x.", "title": "t"}, "requirements": {"timeout_seconds": 10}}')"
check "POST /js-tasks/corpus-report/run" shows "http corpus-report" \
  '.status == "success" and .result.documents == 2 and .result.words == 4' \
  "$(http_run corpus-report '{"input": {"texts": ["a b", "c d"]}}')"
out=$(http POST /js-tasks/no-such-task/run '{}')
check "POST /js-tasks/no-such-task/run is 404 naming it" http_is "run unknown" 404 \
  '.error | contains("no-such-task")' "$out"
check "GET /js-tasks lists the three" shows "http list" '.tasks | length == 3' "$(body "$(http GET /js-tasks)")"
# A new version over HTTP; the old one still runs by number.
out=$(http POST /js-tasks "$(jq -cn --rawfile code "$examples/pure.js" '{code: ($code + "\n// v2\n")}')")
check "POST /js-tasks with changed code stores version 2 (201)" http_is "publish v2" 201 \
  '.task.version == 2 and .unchanged == false' "$out"
check "run --version 1 runs the first version" shows "version 1" '.status == "success" and .payload.version == 1' \
  "$(cli_limit=25 cli run word-stats --version 1 --input '{"text": "a"}' --timeout 10 --wait --json)"

# --- 4. the SDKs ----------------------------------------------------------------------------
part "the SDKs" 60
# The C++ SDK: retire-cluster-bench submits js tasks through rc::client::Client (SubmitAsync,
# WaitAsync), by published name and inline, and checks every result.
bench="$build/bench/retire-cluster-bench"
out=$(timeout 40 "$bench" --coordinator "$RC_ADDR" --mode latency --type js --tasks 20 --warmup 2 --json)
check "C++ SDK: 20 inline echo-like js tasks, every result checked" \
  shows "bench js" '.succeeded == 20 and .failed == 0' "$out"
out=$(timeout 40 "$bench" --coordinator "$RC_ADDR" --mode latency --type js --tasks 3 --warmup 0 --json \
  --payload '{"name": "corpus-report", "input": {"texts": ["a b", "c"]}}')
check "C++ SDK: corpus-report by name, three times" shows "bench corpus-report" '.succeeded == 3 and .failed == 0' "$out"
# The Python SDK's client.tasks.
sdk_py=$(cat <<'PY'
import json, sys
import retire_cluster as rc
addr, examples = sys.argv[1], sys.argv[2]
with rc.Client(addr) as client:
    client.tasks.publish(examples + "/pure.js")
    out = {"pure": client.tasks.run("word-stats", {"text": "a b a"}).result(timeout=20),
           "nested": client.tasks.run("text-report", {"text": "a b a."}).result(timeout=20),
           "fanout": client.tasks.run("corpus-report", {"texts": ["a", "b c"]}).result(timeout=30)}
    print(json.dumps(out))
PY
)
if [ -f "$here/../../python/retire_cluster/v1/client_service_pb2_grpc.py" ]; then
  out=$(PYTHONPATH="$here/../../python" timeout 60 /usr/bin/python3 -c "$sdk_py" "$RC_ADDR" "$examples" 2>"$RC_TMP/py.err")
  check "Python SDK: client.tasks.run of the three examples" shows "python" \
    '.pure.words == 3 and .nested.stats.distinct == 2 and .fanout.documents == 2' "${out:-$(cat "$RC_TMP/py.err")}"
else
  echo "SKIPPED: the Python SDK has no stubs (build the python_sdk target)"
fi

# --- 5. a three-level chain and a fan-out on a one-slot worker ------------------------
part "a three-level chain on one slot" 40
out=$(cli_limit=30 cli run corpus-report --input '{"texts": ["deep chain"]}' --timeout 20 --wait --json)
check "corpus-report -> text-report -> word-stats ends success on the one-slot worker" \
  shows "chain" '.status == "success" and .result.words == 2' "$out"
top=$(jq -r .task_id <<<"$out")
check "tree --json nests the chain three levels deep, all js, all success" shows "tree" '
  .depth == 0 and .task_type == "js" and (.children | length) == 1 and
  .children[0].depth == 1 and .children[0].task_type == "js" and .children[0].status == "success" and
  (.children[0].children | length) == 1 and .children[0].children[0].depth == 2 and
  .children[0].children[0].status == "success" and .children[0].children[0].payload.name == "word-stats" and
  .children[0].children[0].worker_device_id == "w1"' "$(cli tree "$top" --json)"
out=$(cli_limit=40 cli run corpus-report --input '{"texts": ["a", "b b", "c c c", "d d d d", "e e e e e"]}' \
  --timeout 30 --wait --json)
check "a fan-out of five (each a chain) finishes on the same one slot" \
  shows "fan-out of five" '.status == "success" and .result.documents == 5 and .result.words == 15' "$out"
check "... ten descendants, all success" shows "descendants" \
  '[.. | objects | select(has("children")) | .children[]] | length == 10 and all(.[]; .status == "success")' \
  "$(cli tree "$(jq -r .task_id <<<"$out")" --json)"
# context.tasks.execute of another task type, and a failing child caught in the guest.
code='module.exports = async (input, context) => {
  const e = await context.tasks.execute({task_type: "echo", payload: {v: input.v}});
  try {
    await context.tasks.execute({task_type: "js", payload: {code: "module.exports = async () => { throw new Error(\"no\") }"}},
                                {}, {max_retries: 0});
    return {echo: e, caught: null};
  } catch (err) {
    return {echo: e, caught: {name: err.name, status: err.status, message: err.message, has_id: typeof err.taskId}};
  }
}'
check "a child of another type, and a failed child rejects with a catchable TaskError" shows "TaskError" \
  '.status == "success" and .result.echo == {v: 7} and .result.caught.name == "TaskError" and
   .result.caught.status == "failed" and (.result.caught.message | contains("Error: no")) and
   .result.caught.has_id == "string"' "$(run_js "$code" '{"v": 7}')"

# --- 6. escape attempts and bad modules: each fails inside the sandbox ---------------
part "escapes and bad modules" 120
# escape NAME PATTERN CODE [EXTRA [TIMEOUT]]: the task fails, its error matches PATTERN (jq
# regex), and nothing of the host (a passwd line, the worker's environment) shows in it.
escape() {
  local out
  last=$(run_js "$3" '{}' "${4:-{\}}" "${5:-10}")
  check "$1" shows "$1" --arg p "$2" \
    '.status != "success" and (.error_message | test($p)) and
     ((.error_message + .stderr + .stdout) | test("root:x:0|PATH=|HOME=") | not)' "$last"
}
escape "require('fs') is not defined" "ReferenceError: .?require.? is not defined" \
  'module.exports = async () => require("fs").readFileSync("/etc/passwd", "utf8")'
escape "process.env is not defined" "ReferenceError: .?process.? is not defined" \
  'module.exports = async () => process.env'
escape "globalThis.constructor.constructor('return process')() finds no process" "ReferenceError: .?process.? is not defined" \
  'module.exports = async () => globalThis.constructor.constructor("return process")().env'
escape "Function('return this')().process is undefined" "TypeError" \
  'module.exports = async () => Function("return this")().process.env.HOME'
escape "a host function's constructor is the sandbox's Function" "ReferenceError: .?require.? is not defined" \
  'module.exports = async (input, context) => context.log.constructor("return require")()("fs")'
escape "context.tasks.execute.constructor reaches no process either" "ReferenceError: .?process.? is not defined" \
  'module.exports = async (input, context) => context.tasks.execute.constructor("return process.mainModule")()'
escape "an async function's constructor: no require" "ReferenceError: .?require.? is not defined" \
  'module.exports = async () => (async function () {}).constructor("return require(\"child_process\")")()'
escape "import('fs') cannot load a module" "fs" \
  'module.exports = async () => (await import("fs")).readFileSync("/etc/passwd", "utf8")'
escape "a static import is a syntax error" "SyntaxError" \
  'import fs from "fs";
module.exports = async () => fs.readFileSync("/etc/passwd", "utf8")'
out=$(run_js 'module.exports = async () => Object.getOwnPropertyNames(globalThis)')
check "the global object holds no host names" shows "globals" \
  '.status == "success" and (.result | type) == "array" and (.result | index("Object")) != null and
   ([.result[] | select(IN("require", "process", "fetch", "std", "os", "WebAssembly", "Buffer", "global",
      "setInterval", "queueMicrotask", "XMLHttpRequest", "__dirname", "Deno", "Bun"))] | length) == 0' "$out"
escape "an infinite loop ends at its timeout" "." 'module.exports = async () => { for (;;) {} }' '{}' 2
check "... with status timeout, stopped near its 2 s deadline" shows "timeout" \
  '.status == "timeout" and .execution_time_seconds < 8' "$last"
escape "a catastrophic regex ends at its timeout" "." \
  'module.exports = async () => /(a+)+$/.test("a".repeat(40) + "b")' '{}' 2
escape "an endless await loop ends at its timeout" "." \
  'module.exports = async () => { for (;;) { await null; } }' '{}' 2
escape "a memory bomb fails naming memory_mb" "memory_mb \\(32 MiB\\)" \
  'module.exports = async () => { const a = []; for (;;) a.push(new Array(100000).fill(a.length)); }' '{"memory_mb": 32}' 20
escape "a typed-array bomb fails naming memory_mb" "memory_mb \\(32 MiB\\)" \
  'module.exports = async () => { const keep = []; for (;;) keep.push(new Uint8Array(1 << 20).fill(1)); }' \
  '{"memory_mb": 32}' 20
# QuickJS concatenates strings as ropes: doubling one hits the length limit (or the memory cap).
escape "a doubling string fails (too long, or memory_mb)" "string too long|memory_mb \\(32 MiB\\)" \
  'module.exports = async () => { let s = "x"; const keep = []; for (;;) { s = s + s; keep.push(s); } }' '{"memory_mb": 32}' 20
escape "unbounded recursion fails with stack overflow" "stack overflow" \
  'function f(n) { return f(n + 1) + 1; }
module.exports = async () => f(0)'
escape "a syntax error names line and column" "task\\.js:3:[0-9]+" \
  'module.exports = async function (input) {
  const x = 1;
  return x +;
}'
printf '/**\n * @task broken-syntax\n */\nmodule.exports = async () => {\n  return (;\n};\n' >"$RC_TMP/broken.js"
cli tasks publish "$RC_TMP/broken.js" >/dev/null
check "a published task's syntax error names NAME@vN.js:LINE:COL" shows "published syntax" \
  '.status == "failed" and (.error_message | test("broken-syntax@v1\\.js:5:[0-9]+"))' \
  "$(cli_limit=25 cli run broken-syntax --timeout 10 --wait --json)"
escape "a module exporting no function" "module.exports is not a function" 'module.exports = 42'
escape "a module exporting an object of functions" "module.exports is not a function" \
  'module.exports = {execute: async () => 1}'
escape "returning a function is not JSON" "result is not JSON" 'module.exports = async () => () => 1'
escape "returning a BigInt is not JSON" "result is not JSON" 'module.exports = async () => 10n ** 30n'
escape "returning a cycle is not JSON" "result is not JSON" 'module.exports = async () => { const o = {}; o.o = o; return o; }'
escape "a thrown error fails with name, message and the JS stack" "Error: boom 7(.|\\n)*helper" \
  'function helper(n) { throw new Error("boom " + n); }
module.exports = async () => helper(7)'
escape "a child call of an unknown name rejects with the refusal" "no published task .no-such-task." \
  'module.exports = async (input, context) => context.tasks.execute("no-such-task", {})'
out=$(run_js 'module.exports = async () => { JSON.stringify = () => "{not json"; return {a: 1}; }')
check "a guest replacing JSON.stringify cannot forge its result" shows "stringify" \
  '.status == "success" and .result == {a: 1}' "$out"

# The worker is unharmed: still online, the same process, and it runs js.
check "after every escape the worker process still runs" kill -0 "$w1_pid"
check "... and is online" jqe '.workers[] | select(.device_id == "w1") | .status == "online"' <<<"$(cli workers --json)"
check "... and runs an echo-like js task" shows "echo after" '.status == "success" and .result == {ok: [1, "two"]}' \
  "$(run_js 'module.exports = async (input) => input' '{"ok": [1, "two"]}')"
check "... undefined becomes null" shows "undefined" '.status == "success" and .result == null' \
  "$(run_js 'module.exports = async () => undefined')"
check "... a bounded setTimeout works" shows "setTimeout" '.status == "success" and .result == "later"' \
  "$(run_js 'module.exports = async () => { await new Promise((r) => setTimeout(r, 50)); return "later"; }')"
check "... and a sync function works too" shows "sync" '.status == "success" and .result == 42' \
  "$(run_js 'module.exports = function (input) { return input.n * 2; }' '{"n": 21}')"

# The engine host killed under a running task: that attempt fails (js engine exited) and is
# retried; the worker starts a new host and the retry succeeds.
part "the engine host dies" 40
host_pid() {  # the worker's engine host: its child (or grandchild, under containment) running host.js
  local p c
  for p in $(pgrep -P "$w1_pid"); do
    for c in "$p" $(pgrep -P "$p"); do
      tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q "host\.js" && { echo "$c"; return 0; }
    done
  done
  return 1
}
first_host=$(host_pid)
check "the worker runs one engine host (node host.js)" [ -n "$first_host" ]
busy=$(js_payload 'module.exports = async () => { const t = Date.now(); while (Date.now() - t < 1500) {} return "done"; }')
id=$(cli submit js --payload "$busy" --timeout 10 --max-retries 1)
running() { [ "$(cli get "$id" --json | jq -r .status)" = running ]; }
if eventually 10 running && [ -n "$first_host" ]; then
  kill -KILL "$first_host"
  out=$(cli_limit=25 cli wait "$id" --timeout 20 --json)
  check "the task whose host was killed is retried and succeeds" shows "host killed" \
    '.status == "success" and .result == "done" and .attempts == 2 and
     (.attempt_history[0].error_message | contains("js engine exited"))' "$out"
  new_host() { local p; p=$(host_pid) && [ "$p" != "$first_host" ]; }
  check "... on a new engine host" eventually 10 new_host
else
  check "the busy task started" false
fi

# --- 7. bad payloads refused at submit ------------------------------------------------------
part "bad payloads" 20
expect "code and name together: refused naming payload.code" 2 "payload.code" \
  cli submit js --payload '{"code": "module.exports = () => 1", "name": "word-stats"}'
expect "memory_mb 0 refused naming it" 2 "memory_mb" cli submit js --payload '{"code": "module.exports = () => 1", "memory_mb": 0}'
expect "memory_mb 4096 refused naming it" 2 "memory_mb" \
  cli submit js --payload '{"code": "module.exports = () => 1", "memory_mb": 4096}'
expect "an unknown version is refused naming it" 3 "has no version 9" \
  cli submit js --payload '{"name": "word-stats", "version": 9}'
expect "run --version of a missing version" 3 "has no version 9" cli run word-stats --version 9
out=$(http POST /tasks '{"task_type": "js", "payload": {"name": "nope"}}')
check "HTTP POST /tasks of an unknown name is 404 naming it" http_is "POST /tasks unknown" 404 \
  '.error | contains("nope")' "$out"

# --- 8. remove --------------------------------------------------------------------------------
part "remove" 30
check "tasks remove text-report" cli tasks remove text-report
expect "show after remove: not found" 3 "text-report" cli tasks show text-report
out=$(cli_limit=25 cli run corpus-report --input '{"texts": ["a"]}' --timeout 10 --wait --json)
check "corpus-report now fails: its child's name is gone" shows "removed child" \
  '.status == "failed" and (.error_message | contains("text-report"))' "$out"
out=$(http DELETE /js-tasks/word-stats?version=1)
check "HTTP DELETE /js-tasks/word-stats?version=1 removes one version" http_is "DELETE" 200 \
  '.removed_versions == 1' "$out"
latest=$(cli tasks show word-stats --json | jq -r .version)  # 3: the Python SDK part published pure.js again
check "... the latest version ($latest) still runs" shows "latest after remove" \
  ".status == \"success\" and .payload.version == $latest and $latest >= 2" \
  "$(cli_limit=25 cli run word-stats --input '{"text": "a"}' --timeout 10 --wait --json)"

check "the worker stops cleanly" rc_stop "$w1_pid" 10
echo "${SECONDS}s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
