#!/usr/bin/env bash
# Containment tiers on the real binaries: a worker started with --containment bwrap
# reports it, runs a `command` task that cannot write outside its directory nor reach a
# 127.0.0.1 service unless the task requires internet, and refuses a task's loader
# variables (issue 12) while passing its ordinary ones inside; a worker asked for bwrap
# where there is none refuses to start.
# usage: containment_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
worker="$build/worker/retire-cluster-worker"
cli="$build/client/retire-cluster"

if ! bwrap --ro-bind / / --unshare-user --unshare-pid --unshare-net true 2>"$RC_TMP/bwrap.err"; then
  echo "SKIPPED: bwrap sandboxes do not work here: $(cat "$RC_TMP/bwrap.err")"
  exit 77
fi

# A worker asked for an unavailable tier fails at once, saying which and why.
expect "bwrap missing: the worker refuses to start" 2 "containment bwrap is unavailable: no bwrap program on PATH" \
  env PATH=/nonexistent "$worker" --join 127.0.0.1:1 --data-dir "$RC_TMP/nobwrap" --containment bwrap
# A bwrap that cannot create namespaces, as where user namespaces are disabled.
mkdir -p "$RC_TMP/fake-bin"
printf '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n' >"$RC_TMP/fake-bin/bwrap"
chmod +x "$RC_TMP/fake-bin/bwrap"
expect "bwrap without user namespaces: the worker refuses to start" 2 \
  "containment bwrap is unavailable: a trial sandbox .* failed with exit code 1: bwrap: setting up uid map" \
  env PATH="$RC_TMP/fake-bin:/usr/bin:/bin" "$worker" --join 127.0.0.1:1 --data-dir "$RC_TMP/nons" --containment bwrap

check "coordinator starts" rc_start_main "$build" --log-level warn
submit() { "$cli" --coordinator "$RC_ADDR" submit command --wait --json "$@"; }

# internet: true lets the worker take tasks that require internet (and open theirs).
printf 'internet: true\n' >"$RC_TMP/worker.yaml"
check "a bwrap worker joins" rc_start_worker "$build" boxed --containment bwrap --allow command \
  --config "$RC_TMP/worker.yaml"
workers=$("$cli" --coordinator "$RC_ADDR" workers --json)
check "it reports containment bwrap" jqe '.workers[] | select(.device_id == "boxed") | .containment == "bwrap"' \
  <<<"$workers"
echo "cgroup limits enforced here: $(jq -c '.workers[] | select(.device_id == "boxed") | .cgroup_limits' <<<"$workers")"
check "the startup log names the tier and the cgroup controllers" \
  grep -q "containment: bwrap.*" "$RC_TMP/boxed.log"
check "the startup log has the cgroups line" grep -q "cgroups: enforcing" "$RC_TMP/boxed.log"

escape="/etc/rc-escape-$RANDOM$RANDOM"
payload=$(jq -cn --arg e "$escape" --arg d "$RC_TMP/boxed/escape" --arg w "$build/rc-escape-$$" '{command:
  ("echo in > inside && cat inside; echo x > \($e); echo x > \($d); echo x > \($w); echo x > ../../../escape; true")}')
out=$(submit --payload "$payload")
check "the task succeeds and wrote its own dir" jqe '.status == "success" and .stdout == "in\n"' <<<"$out"
check "it could not write to /etc" test ! -e "$escape"
check "it could not write to the worker's data dir" test ! -e "$RC_TMP/boxed/escape"
check "it could not write to the build tree" test ! -e "$build/rc-escape-$$"
check "it could not write next to the data dir" test ! -e "$RC_TMP/escape"
check "the writes failed read-only" jqe '.stderr | contains("Read-only file system")' <<<"$out"

# A service on 127.0.0.1 (ephemeral port) for the task to try to reach.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$RC_TMP/listener.port" &
RC_PIDS+=($!)
port=""
for _ in $(seq 50); do port=$(cat "$RC_TMP/listener.port"); [ -n "$port" ] && break; sleep 0.1; done
connect=$(jq -cn --arg p "$port" '{argv: ["/bin/bash", "-c", ("exec 3<>/dev/tcp/127.0.0.1/" + $p + " && echo connected")]}')
out=$(submit --payload "$connect")
check "without internet_required the task cannot reach 127.0.0.1:$port" \
  jqe '.status == "failed" and (.stdout | contains("connected") | not)' <<<"$out"
out=$(submit --internet --payload "$connect")
check "with internet_required it can" jqe '.status == "success" and .stdout == "connected\n"' <<<"$out"

# Issue 12, repro 1: the task's env once reached bwrap itself, outside the sandbox.
debug="rc-ld-debug-$RANDOM$RANDOM"
payload=$(jq -cn --arg o "/var/tmp/$debug" '{argv: ["true"], env: {LD_DEBUG: "libs", LD_DEBUG_OUTPUT: $o}}')
out=$(submit --max-retries 0 --payload "$payload")
check "a task setting LD_DEBUG fails, naming the variable and its family" \
  jqe '.status == "failed" and (.error_message | contains("payload.env.LD_DEBUG: refused, a loader variable"))' <<<"$out"
check "and nothing was written on the host" test -z "$(ls /var/tmp | grep "$debug")"
payload=$(jq -cn --arg p "$build/test-fixtures/libpreload_probe.so" '{argv: ["true"], env: {LD_PRELOAD: $p}}')
out=$(submit --max-retries 0 --payload "$payload")
check "a task setting LD_PRELOAD fails the same way" \
  jqe '.status == "failed" and (.error_message | contains("payload.env.LD_PRELOAD: refused"))' <<<"$out"
out=$(submit --payload '{"argv": ["/bin/sh", "-c", "echo $GREETING"], "env": {"GREETING": "hello"}}')
check "an ordinary variable reaches the task inside the sandbox" \
  jqe '.status == "success" and .stdout == "hello\n"' <<<"$out"

rc_stop "$RC_LAST_WORKER_PID"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
