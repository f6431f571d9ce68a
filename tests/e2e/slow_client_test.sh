#!/usr/bin/env bash
# The HTTP port no client can starve, on the real binary: 200 idle TCP connections and
# 100 long polls (GET /tasks/{id}/wait on tasks no worker runs: none is connected), and
# /healthz, a submit and /metrics each still answer within 100 ms (median of 5).
# usage: slow_client_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"

check "coordinator starts" rc_start_main "$build" --log-level warn
# The latencies are printed either way (they are the number the README quotes).
/usr/bin/python3 "$here/slow_client.py" "$RC_HTTP" 200 100 100
check "200 idle connections and 100 long polls do not delay /healthz, submit or /metrics" test $? -eq 0
expect "the coordinator still answers after the clients left" 0 '"status":"ok"' \
  /usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://$RC_HTTP/healthz', timeout=5).read().decode())"
check "the coordinator stops cleanly" rc_stop "$RC_MAIN_PID"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
