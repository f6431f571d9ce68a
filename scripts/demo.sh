#!/usr/bin/env bash
# Starts a local cluster (coordinator + 2 workers with different tags) on 127.0.0.1,
# runs a handful of real tasks of several priorities and requirements (from the CLI, a
# JavaScript fan-out in the QuickJS sandbox, then
# from the Python SDK), prints their results and the cluster status, then stops
# everything cleanly.
# usage: scripts/demo.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
source "$here/lib.sh"
cli() { "$build/client/retire-cluster" --coordinator "$RC_ADDR" "$@"; }

rc_start_main "$build"
echo "== coordinator listening on $RC_ADDR"
# JavaScript tasks need node and the engine the build installs (target js_engine, npm ci).
js_allow=""
if [ -d "$build/worker/js/node_modules" ] && command -v node > /dev/null; then js_allow=",js"; fi
rc_start_worker "$build" laptop --role worker --tags ssd,home --slots 2 --allow "command$js_allow"
rc_start_worker "$build" gpu-box --role compute --tags gpu-box --slots 1
echo "== workers"
cli workers

echo "== submitting tasks"
# One urgent task that no worker can run: it waits, says why, and is cancelled.
stuck=$(cli submit echo --priority urgent --tag needs-a-tpu --payload '{"message":"never runs"}')
slow=$(cli submit sleep --payload '{"duration": 0.5}' --priority low --tag gpu-box)
ids=(
  "$(cli submit echo --payload '{"message":"hello from retire-cluster"}' --priority high)"
  "$(cli submit system_info --device laptop)"
  "$(cli submit echo --payload '{"job":"render","frame":42}' --role compute)"
  "$(cli submit sleep --payload '{"duration": 0.2}' --tag ssd --priority normal)"
  "$(cli submit sleep --payload '{"duration": 30}' --timeout 0.3)"
  "$(cli submit command --payload '{"command": "uname -sm; nproc"}' --device laptop)"
  "$slow"
)
echo "queued ${#ids[@]} tasks; an urgent one needing tag needs-a-tpu:"
cli get "$stuck" | sed -n '/status\|unschedulable/p'

failures=0
for id in "${ids[@]}"; do
  echo "== $id"
  if ! cli wait "$id" --timeout 30 > "$RC_TMP/task.out"; then
    grep -q '^status: *timeout' "$RC_TMP/task.out" || failures=$((failures + 1))
  fi
  sed -n '/^task_type\|^status\|^priority\|^worker\|^result\|^error\|^started_at/p' "$RC_TMP/task.out" | cut -c1-160
done
echo "== cancelling $stuck"
cli cancel "$stuck"

if [ -n "$js_allow" ]; then
  echo "== JavaScript in the QuickJS sandbox: publish examples/js, run one that fans out to the others"
  for f in pure nested fanout; do cli tasks publish "$here/../examples/js/$f.js"; done
  if ! cli run corpus-report --input '{"texts": ["the cat sat", "the dog ran far"]}' --timeout 30 --wait; then
    failures=$((failures + 1))
  fi
else
  echo "== (no JavaScript step: node or build/worker/js/node_modules is missing; see README, JavaScript tasks)"
fi

echo "== the same from Python (the SDK in python/: futures and map)"
if ! PYTHONPATH="$here/../python" RETIRE_CLUSTER_COORDINATOR="$RC_ADDR" timeout 60 /usr/bin/python3 - <<'PY'; then
import retire_cluster as rc

with rc.Client() as client:  # the coordinator from $RETIRE_CLUSTER_COORDINATOR
    naps = [client.submit("sleep", {"duration": 0.1}, tags=["ssd"]) for _ in range(3)]
    print("map on the compute role:", client.map("echo", [{"frame": i} for i in range(4)], role="compute"))
    print("three futures:", [f.result(timeout=30) for f in naps])
PY
  failures=$((failures + 1))
fi

echo "== cluster status"
"$build/client/retire-cluster-status" "$RC_ADDR" --devices

echo "== stopping"
for pid in "${RC_PIDS[@]:1}"; do rc_stop "$pid"; done
rc_stop "$RC_MAIN_PID"
if [ "$failures" -ne 0 ]; then
  echo "demo: $failures task(s) did not end as expected" >&2
  exit 1
fi
echo "demo: all tasks ended as expected; cluster stopped cleanly"
