#!/usr/bin/env bash
# Browser automation on the real binaries and a real Chromium (DESIGN.md "Browser
# automation", issue 17): `browser` start / status (live pid, memory) / stop; a python_script
# with a `browser` block reading a page title through CDP under bwrap; cookies of a profile
# kept across two tasks (the browser stopped between them); browser_session ending on the
# browser's exit and on POST /tasks/{id}/complete with the attempt's token, a foreign token
# refused; bad input (unknown operation, profile '../x', a CDP port, a profile in use, no
# Chromium on a worker: the task waits with unschedulable_reason); POST /v1/browser/control;
# browser_record under Xvfb, driven over CDP like a person would, returning the script.
# Skips (77) without Chromium or python3-websocket; the recording part is skipped (said so)
# without Xvfb or the recorder the build installs (build/worker/browser/record/node_modules).
# usage: browser_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "SKIPPED: no chromium on PATH (scripts/install-deps.sh installs Debian's chromium)"
  exit 77
fi
if ! /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 has no websocket module (Debian's python3-websocket)"
  exit 77
fi
source "$here/../../scripts/lib.sh"
clibin="$build/client/retire-cluster"
cli() { timeout "${cli_limit:-20}" "$clibin" --coordinator "$RC_ADDR" "$@"; }
fatal() { echo "$passed passed, $((failed + 1)) failed (stopped: $1)" >&2; exit 1; }
# shows LABEL [JQ_ARGS...] FILTER JSON: JSON passes FILTER, or the JSON is printed.
shows() {
  local label=$1; shift
  local json=${!#}
  jqe "${@:1:$#-1}" <<<"$json" && return 0
  printf '%s: %s\n' "$label" "$(jq -c 'if type == "object" and has("status") then
    {status, result, error_message, unschedulable_reason, resource_usage, stderr, stdout} else . end' \
    <<<"$json" 2>/dev/null || echo "$json")" >&2
  return 1
}
# http METHOD URL [BODY [TOKEN]]: prints the body, then the status code on a line of its own.
http() {
  local args=(-s --max-time 30 -w '\n%{http_code}' -X "$1")
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  [ $# -lt 4 ] || args+=(-H "Authorization: Bearer $4")
  curl "${args[@]}" "$2"
}
body() { sed '$d' <<<"$1"; }
code() { tail -1 <<<"$1"; }
http_is() {  # http_is LABEL CODE FILTER OUT
  [ "$(code "$4")" = "$2" ] && jqe "$3" <<<"$(body "$4")" && return 0
  printf '%s: want %s, got: %s\n' "$1" "$2" "$4" >&2
  return 1
}
# submit TYPE PAYLOAD [FLAGS...]: runs a task to its end (at most 60 s); prints its JSON.
submit() {
  local type=$1 payload=$2; shift 2
  cli_limit=75 cli submit "$type" --payload "$payload" --timeout 60 --max-retries 0 --wait --json "$@"
}
task() { cli get "$1" --json; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null; }
status_is() { [ "$(task "$1" | jq -r .status)" = "$2" ]; }
live_pid() { task "$1" | jq -e -r 'select(.status == "running" and .resource_usage.pid > 0) | .resource_usage.pid'; }
# page_task URL WANT [BROWSER_BLOCK]: a python_script payload opening URL in the task's
# browser until its title starts with WANT.
page_task() {
  jq -cn --rawfile code "$here/browser_page_task.py" --arg url "$1" --arg want "$2" --argjson b "${3:-{\}}" \
    '{code: ($code | gsub("@URL@"; $url) | gsub("@WANT@"; $want)), browser: ({profile: "default"} + $b)}'
}

# --- the site the browsers visit (127.0.0.1 only) -----------------------------------------
mkdir -p "$RC_TMP/site"
printf '<!doctype html><title>Hello from the test</title><p>hi</p>\n' >"$RC_TMP/site/title.html"
printf '<!doctype html><script>document.cookie = "rc_login=alice; max-age=3600; path=/"; document.title = "set";</script>\n' \
  >"$RC_TMP/site/login.html"
printf '<!doctype html><script>document.title = "cookie:" + document.cookie;</script>\n' >"$RC_TMP/site/whoami.html"
printf '<!doctype html><title>Form</title><label>Name <input id=n></label>
<button onclick="document.title = %s + document.getElementById(%s).value">Send</button>\n' "'sent '" "'n'" \
  >"$RC_TMP/site/form.html"
/usr/bin/python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$RC_TMP/site" >"$RC_TMP/site.out" 2>&1 &
RC_PIDS+=($!)
for _ in $(seq 50); do
  site_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$RC_TMP/site.out" | head -1)
  [ -n "$site_port" ] && break
  sleep 0.1
done
[ -n "${site_port:-}" ] || fatal "the test's web server did not start: $(cat "$RC_TMP/site.out")"
site="http://127.0.0.1:$site_port"

# --- an X display for headful browsers and the recorder ----------------------------------
display=""
if command -v Xvfb >/dev/null; then
  for n in $(seq 90 120); do
    [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { display=":$n"; break; }
  done
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$RC_TMP/xvfb.log" 2>&1 &
  RC_PIDS+=($!)
  eventually_x() { [ -e "/tmp/.X11-unix/X${display#:}" ]; }
  for _ in $(seq 50); do eventually_x && break; sleep 0.1; done
  eventually_x || { echo "Xvfb did not start: $(cat "$RC_TMP/xvfb.log")" >&2; display=""; }
fi
recorder_ok=false
[ -n "$display" ] && [ -f "$build/worker/browser/record/node_modules/playwright-core/package.json" ] && recorder_ok=true

# --- the cluster ---------------------------------------------------------------------------
containment=()
if bwrap --ro-bind / / --unshare-user --unshare-pid --unshare-net true 2>/dev/null; then
  containment=(--containment bwrap)
else
  echo "NOTE: bwrap sandboxes do not work here: the tasks run at the process tier"
fi
display_flag=()
[ -z "$display" ] || display_flag=(--display "$display")
printf 'heartbeat_interval_seconds: 0.5\noffline_after_seconds: 3\nlog_level: warn\n' >"$RC_TMP/main.yaml"
printf 'reconnect_initial_seconds: 0.1\nreconnect_max_seconds: 0.5\nlog_level: info\n' >"$RC_TMP/worker.yaml"
check "coordinator starts" rc_start_main "$build" --config "$RC_TMP/main.yaml" || fatal "no coordinator"
check "a browser worker joins" rc_start_worker "$build" w1 --slots 4 --config "$RC_TMP/worker.yaml" \
  --allow browser,browser_session,browser_record,python_script,command "${containment[@]}" "${display_flag[@]}" \
  || fatal "no worker"
w1_pid=$RC_LAST_WORKER_PID
# w2 allows the browser types but has no Chromium: it must not offer them.
check "a worker without Chromium joins" rc_start_worker "$build" w2 --slots 1 --config "$RC_TMP/worker.yaml" \
  --allow browser,browser_session,browser_record --chromium /nonexistent/chromium || fatal "no second worker"
workers=$(cli workers --json)
check "w1 offers browser and browser_session" shows "w1 types" \
  '.workers[] | select(.device_id == "w1") | (.task_types | index("browser") and index("browser_session")) != null' \
  "$workers"
if $recorder_ok; then
  check "w1 offers browser_record (display $display)" shows "w1 record" \
    '.workers[] | select(.device_id == "w1") | (.task_types | index("browser_record")) != null' "$workers"
fi
check "w2 (no Chromium) offers none of the browser types" shows "w2 types" \
  '.workers[] | select(.device_id == "w2") | [.task_types[] | select(startswith("browser"))] | length == 0' "$workers"
check "w2 said why in its log" grep -q "allowed but not offered: .*chromium_path /nonexistent/chromium" "$RC_TMP/w2.log"

# --- 1. browser start / status / stop ---------------------------------------------------------
part "browser start, status, stop" 90
out=$(submit browser '{"operation": "start", "profile": "p1"}' --device w1)
check "start: running, a pid, a CDP URL on 127.0.0.1" shows "start" \
  '.status == "success" and .result.running == true and .result.pid > 0 and .result.profile == "p1" and
   (.result.cdp_url | test("^http://127\\.0\\.0\\.1:[0-9]+$"))' "$out"
pid=$(jq -r .result.pid <<<"$out")
cdp=$(jq -r .result.cdp_url <<<"$out")
check "... the pid is alive" alive "$pid"
check "... CDP answers /json/version" shows "json/version" '.Browser | startswith("Chrome")' \
  "$(curl -s --max-time 5 "$cdp/json/version")"
check "... its profile dir is under the worker's data dir, 0700" \
  test "$(stat -c %a "$RC_TMP/w1/browser/profiles/p1" 2>/dev/null)" = 700
sleep 5  # "idle": status after the browser settled
out=$(submit browser '{"operation": "status", "profile": "p1"}' --device w1)
check "status: the same live pid, memory_mb > 0" shows "status" --argjson pid "$pid" \
  '.status == "success" and .result.running == true and .result.pid == $pid and .result.memory_mb > 0' "$out"
out=$(submit browser '{"operation": "start", "profile": "p1"}' --device w1)
check "start of a running profile returns it as it is (warm)" shows "warm start" --argjson pid "$pid" \
  '.status == "success" and .result.pid == $pid' "$out"
out=$(submit browser '{"operation": "stop", "profile": "p1"}' --device w1)
check "stop: running false" shows "stop" '.status == "success" and .result.running == false' "$out"
check "... the browser is gone" eventually 10 gone "$pid"
out=$(submit browser '{"operation": "status", "profile": "p1"}' --device w1)
check "status after stop: not running" shows "status stopped" '.status == "success" and .result.running == false' "$out"

# --- 2. a python_script with a browser block reads a page title through CDP ------------------
part "python_script with a browser block" 90
out=$(submit python_script "$(page_task "$site/title.html" "Hello from the test")" --device w1)
check "the script got RC_CDP_URL and read the page's title over CDP" shows "title" \
  '.status == "success" and (.stdout | contains("title=Hello from the test")) and (.stdout | contains("profile=default"))' \
  "$out"
out=$(submit command '{"argv": ["sh", "-c", "echo cdp=$RC_CDP_URL profile=$RC_BROWSER_PROFILE"], "browser": {"profile": "default"}}' \
  --device w1)
check "a command task gets RC_CDP_URL and RC_BROWSER_PROFILE too" shows "command" \
  '.status == "success" and (.stdout | test("cdp=http://127\\.0\\.0\\.1:[0-9]+ profile=default"))' "$out"
out=$(submit browser '{"operation": "status", "profile": "default"}' --device w1)
check "keep_alive (default true): the browser outlives the task" shows "kept" '.result.running == true' "$out"

# --- 3. cookies persist across two tasks of one profile -----------------------------------------
part "cookies across two tasks" 120
out=$(submit python_script "$(page_task "$site/login.html" "set" '{"profile": "shop", "keep_alive": false}')" --device w1)
check "task 1 logs in (a cookie with max-age) on profile shop" shows "login" \
  '.status == "success" and (.stdout | contains("title=set"))' "$out"
out=$(submit browser '{"operation": "status", "profile": "shop"}' --device w1)
check "... keep_alive false: the browser it started is stopped after it" shows "stopped after" \
  '.result.running == false' "$out"
out=$(submit python_script "$(page_task "$site/whoami.html" "cookie:" '{"profile": "shop"}')" --device w1)
check "task 2, a new browser on the same profile, sees the cookie" shows "cookie" \
  '.status == "success" and (.stdout | contains("rc_login=alice"))' "$out"
out=$(submit python_script "$(page_task "$site/whoami.html" "cookie:" '{"profile": "other"}')" --device w1)
check "another profile does not" shows "other profile" \
  '.status == "success" and (.stdout | contains("rc_login") | not)' "$out"

# --- 4. browser_session: pid and usage while it runs, completion on exit -------------------------
part "browser_session ends on exit" 90
id=$(cli submit browser_session --payload "$(jq -cn --arg u "$site/title.html" '{url: $u, complete_on: "exit", headless: true}')" \
  --timeout 120 --max-retries 0 --device w1)
check "browser_session runs with a live pid" eventually 30 live_pid "$id"
pid=$(live_pid "$id")
check "... the pid is alive" alive "${pid:-0}"
sampled() {
  task "$1" | jqe '.resource_usage.memory_bytes > 0 and .resource_usage.sampled_at != null and
    (.resource_usage | has("cpu_percent"))'
}
check "... memory and cpu sampled into the task" eventually 10 sampled "$id"
# Kill it only once it is up (it wrote DevToolsActivePort): a browser that dies before that
# failed to start, and the session rightly ends failed (retried), not success. Live samples
# come before that, so under load the kill could land first: this check then flaked.
up() { local d; d=$(tr '\0' '\n' <"/proc/$1/cmdline" | sed -n 's/^--user-data-dir=//p'); test -s "$d/DevToolsActivePort"; }
check "... the browser is up (DevToolsActivePort written)" eventually 30 up "${pid:-0}"
# SIGKILL: the browser's process is gone at once (a crash, or the user closing it).
kill -KILL "${pid:-0}" 2>/dev/null
check "killing the browser ends the task success" eventually 20 status_is "$id" success
check "... with ended exit" shows "exit" '.result.ended == "exit"' "$(task "$id")"

# --- 5. browser_session: completion by callback, a foreign callback refused ---------------------
part "browser_session ends on a callback" 90
session() {
  cli submit browser_session --payload "$(jq -cn --arg u "$site/title.html" '{url: $u, complete_on: "callback", headless: true}')" \
    --timeout 120 --max-retries 0 --device w1
}
a=$(session)
b=$(session)
check "two callback sessions run" eventually 30 live_pid "$a"
check "... both" eventually 30 live_pid "$b"
env_of() { tr '\0' '\n' <"/proc/$1/environ" | sed -n "s/^$2=//p"; }
pa=$(live_pid "$a"); pb=$(live_pid "$b")
token_a=$(env_of "$pa" RETIRE_CLUSTER_TOKEN); token_b=$(env_of "$pb" RETIRE_CLUSTER_TOKEN)
url_a=$(env_of "$pa" RC_CALLBACK_URL)
check "the browser's environment has RC_CALLBACK_URL, RETIRE_CLUSTER_TOKEN and RC_TASK_ID" \
  test -n "$token_a" -a "$url_a" = "http://127.0.0.1:$RC_HTTP_PORT/tasks/$a/complete" -a "$(env_of "$pa" RC_TASK_ID)" = "$a"
out=$(http POST "$url_a" '{"status": "success", "result": {"forged": true}}' "$token_b")
check "a callback for task A with task B's token is refused (403)" http_is "foreign" 403 '.error | length > 0' "$out"
check "... A still runs" status_is "$a" running
out=$(http POST "$url_a" '{"status": "success", "result": {"order": 42}}' "$token_a")
check "A's own token: 202 accepted" http_is "callback" 202 ".task_id == \"$a\" and .accepted == true" "$out"
check "A ends success with the callback's result" eventually 20 status_is "$a" success
check "... result {order: 42}" shows "callback result" '.result.order == 42' "$(task "$a")"
check "... its browser is stopped" eventually 10 gone "$pa"
out=$(http POST "$url_a" '{"status": "success"}' "$token_a")
check "a second callback for the finished task is refused" test "$(code "$out")" -ge 400
check "B still runs" status_is "$b" running
check "cancel ends B and its browser" cli cancel "$b"
check "... B's browser is gone" eventually 15 gone "$pb"

# --- 6. bad input ------------------------------------------------------------------------------
part "bad input" 120
out=$(submit browser '{"operation": "restart"}' --device w1)
check "unknown operation: failed naming it" shows "operation" \
  '.status == "failed" and (.error_message | contains("payload.operation")) and (.error_message | contains("restart"))' "$out"
out=$(submit browser '{"operation": "start", "profile": "../x"}' --device w1)
check "profile '../x': failed naming payload.profile" shows "profile" \
  '.status == "failed" and (.error_message | contains("payload.profile"))' "$out"
out=$(submit browser '{"operation": "start", "port": 9222}' --device w1)
check "a CDP port: refused, Chromium chooses it" shows "port" \
  '.status == "failed" and (.error_message | contains("the CDP port is chosen by Chromium"))' "$out"
out=$(submit python_script "$(jq -cn '{code: "print(1)", browser: {profile: "a/b"}}')" --device w1)
check "a browser block with a bad profile: failed naming it" shows "block profile" \
  '.status == "failed" and (.error_message | contains("profile"))' "$out"
# A profile in use: a task holds 'busy' while `browser stop` of it is refused naming the task.
holder=$(cli submit command --payload '{"argv": ["sleep", "6"], "browser": {"profile": "busy"}}' --timeout 60 \
  --max-retries 0 --device w1)
check "a task holding profile busy runs" eventually 30 status_is "$holder" running
sleep 1
out=$(submit browser '{"operation": "stop", "profile": "busy"}' --device w1)
check "stop of a profile a task holds: failed naming the task" shows "in use" --arg h "$holder" \
  '.status == "failed" and (.error_message | contains($h))' "$out"
check "... the holder ends success" eventually 30 status_is "$holder" success
id=$(cli submit browser --payload '{"operation": "status"}' --device w2 --timeout 60)
unschedulable() { task "$1" | jqe '(.status == "pending" or .status == "queued") and (.unschedulable_reason | length) > 0'; }
check "a browser task for the worker without Chromium waits, unschedulable" eventually 15 unschedulable "$id"
check "... its unschedulable_reason names the type" shows "unschedulable_reason" \
  '.unschedulable_reason | contains("browser")' "$(task "$id")"
cli cancel "$id" >/dev/null

# --- 7. POST /v1/browser/control -------------------------------------------------------------------
part "POST /v1/browser/control" 90
out=$(http POST "http://$RC_HTTP/v1/browser/control" '{"operation": "start", "target_device_id": "w1"}')
check "start: 200, running, a CDP URL" http_is "control start" 200 \
  '.success == true and .is_running == true and (.cdp_url | startswith("http://127.0.0.1:"))' "$out"
out=$(http POST "http://$RC_HTTP/v1/browser/control" '{"operation": "status", "target_device_id": "w1"}')
check "status: running" http_is "control status" 200 '.success == true and .is_running == true' "$out"
out=$(http POST "http://$RC_HTTP/v1/browser/control" '{"operation": "stop", "target_device_id": "w1"}')
check "stop: not running" http_is "control stop" 200 '.success == true and .is_running == false and .message == "browser stopped"' "$out"
out=$(http POST "http://$RC_HTTP/v1/browser/control" '{"operation": "jump"}')
check "an unknown operation: 400 naming it" http_is "control bad" 400 '.error | contains("jump")' "$out"

# --- 8. browser_record under Xvfb --------------------------------------------------------------------
if ! $recorder_ok; then
  echo "SKIPPED: browser_record (display '${display}', recorder node_modules present: $(
    [ -d "$build/worker/browser/record/node_modules" ] && echo yes || echo no))"
else
  part "browser_record" 180
  before=$(date +%s)
  id=$(cli submit browser_record --payload "$(jq -cn --arg u "$site/form.html" '{url: $u, target: "python", max_seconds: 120}')" \
    --timeout 170 --max-retries 0 --device w1)
  # The recording browser writes DevToolsActivePort into its fresh profile, in the recorder's
  # short temp dir (/tmp/rc-record-*: see recorder.js).
  port_file() {
    find /tmp -maxdepth 3 -path '/tmp/rc-record-*/playwright_chromiumdev_profile-*/DevToolsActivePort' \
      -newermt "@$before" 2>/dev/null | head -1
  }
  has_port_file() { [ -n "$(port_file)" ]; }
  check "the recording's browser comes up" eventually 60 has_port_file
  rec_cdp="http://127.0.0.1:$(head -1 "$(port_file)" 2>/dev/null)"
  check "a person fills the form and clicks Send, then closes the page" \
    timeout 60 /usr/bin/python3 "$here/record_driver.py" "$rec_cdp" "$site/form.html" alice close
  check "the recording ends success" eventually 60 status_is "$id" success
  out=$(task "$id")
  check "result.code is the Python script of what was done" shows "recorded" --arg u "$site/form.html" '
    .result.ended == "closed" and .result.target == "python" and
    (.result.code | contains("sync_playwright")) and
    (.result.code | contains("page.goto(\"" + $u + "\")")) and
    (.result.code | contains("get_by_role(\"textbox\", name=\"Name\").fill(\"alice\")")) and
    (.result.code | contains("get_by_role(\"button\", name=\"Send\").click()"))' "$out"
  out=$(cli_limit=120 cli submit browser_record --payload "$(jq -cn --arg u "$site/title.html" '{url: $u, target: "javascript", max_seconds: 3}')" \
    --timeout 100 --max-retries 0 --device w1 --wait --json)
  check "max_seconds ends an untouched recording with the script so far (javascript)" shows "max_seconds" \
    --arg u "$site/title.html" '.status == "success" and .result.ended == "max_seconds" and
    (.result.code | contains("await page.goto(\u0027" + $u + "\u0027)"))' "$out"
  out=$(submit browser_record "$(jq -cn '{url: "http://127.0.0.1/", target: "cobol"}')" --device w1)
  check "an unknown target: failed naming payload.target" shows "target" \
    '.status == "failed" and (.error_message | contains("payload.target: \u0027cobol\u0027"))' "$out"
  out=$(submit browser_record '{"url": "file:///etc/passwd"}' --device w1)
  check "a file: URL is refused" shows "file url" '.status == "failed" and (.error_message | contains("payload.url"))' "$out"
fi

# --- the worker stops its browsers when it stops ---------------------------------------------
part "worker stop" 30
out=$(submit browser '{"operation": "start", "profile": "last"}' --device w1)
pid=$(jq -r '.result.pid // 0' <<<"$out")
check "a browser runs before the worker stops" alive "$pid"
check "the worker stops on SIGTERM" rc_stop "$w1_pid" 20
check "... and its browser is gone" eventually 10 gone "$pid"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
