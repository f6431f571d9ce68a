#!/usr/bin/env bash
# Python clients side by side (issue 15): our Python SDK (python/bench.py) against Celery's own
# Python client (../shared/peers/celery), both measured in ONE invocation on the same machine.
# Per repetition: a fresh coordinator (durable SQLite store, default flags) and 2 local workers
# on 127.0.0.1 with ephemeral ports, python/bench.py against them, then everything stopped. Then
# the peers' celery/run.sh with the same REPS. Prints a markdown table (median [min-max]) with
# the ratios ours/Celery, and writes it and every raw JSON line to
# bench/results/python-compare-<timestamp>.{md,jsonl}.
#
# usage: bench/python_compare.sh
#        REPS=1 N=5000 LAT=500 CELERY=0 bench/python_compare.sh
#        bench/python_compare.sh --table FILE.jsonl     # re-render the table of an old run
#
# Env knobs:
#   REPS=3          repetitions (median [min-max] is reported)
#   N=20000         echo tasks per throughput phase of ours (futures, map)
#   LAT=2000        sequential round trips of ours
#   PHASES=futures,map,latency   bench.py phases (add aio for rc.aio)
#   WORKERS=2       local workers   WORKER_FLAGS=  extra worker flags (e.g. "--slots 16")
#   MAIN_FLAGS=     extra coordinator flags
#   OURS=1          0 skips ours (e.g. to check the Celery half alone)
#   CELERY=1        0 skips Celery   CELERY_N=, CELERY_LAT=  override its own sizes (6000, 200)
#   BUILD=build     build dir with coordinator/ worker/ client/ binaries (relative to the repo)
#   PEERS_DIR=../shared/peers (relative to the repo)   PY=/usr/bin/python3
#   RUN_TIMEOUT=600 seconds before one bench.py run (or Celery's whole run.sh: x REPS) is killed
#   PROFILE=        a directory: run each bench.py with --profile (cProfile of the futures phase)
# Celery needs (as root; a bench prerequisite, not a build or test dependency):
#   apt-get install -y --no-install-recommends redis-server python3-celery python3-redis
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# Debian's interpreter: grpc/protobuf and Celery are only visible to it (a pyenv python3 may
# come first on PATH).
PY=${PY:-/usr/bin/python3}

# The table is rendered from the JSON lines alone, so an old run can be re-rendered and the
# table never holds a figure that is not in the .jsonl.
render_table() {
  "$PY" - "$1" <<'PYEOF'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
info = next((r for r in rows if r.get("kind") == "info"), {})

def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d

def vals(system, path):
    out = [get(r["result"], path) for r in rows if r.get("system") == system]
    return [v for v in out if isinstance(v, (int, float))]

def num(x):
    a = abs(x)
    return (f"{x:,.0f}" if a >= 100 else f"{x:.1f}" if a >= 10
            else f"{x:.2f}" if a >= 0.1 else f"{x:.3f}")

def med(v):
    return statistics.median(v) if v else None

def cell(v):
    return "-" if not v else f"{num(med(v))} [{num(min(v))}-{num(max(v))}]"

def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:,.1f}x" if a / b >= 10 else f"{a / b:.2f}x"

c_tp = vals("celery", "metrics.a_throughput.tasks_per_s")
c_p50 = vals("celery", "metrics.b_latency.p50_ms")
rows_out = [
    ("retire-cluster, `submit` futures", vals("ours", "metrics.futures.tasks_per_s"),
     vals("ours", "metrics.futures.client_cpu_us_per_task"), "ours"),
    ("retire-cluster, `map`", vals("ours", "metrics.map.tasks_per_s"),
     vals("ours", "metrics.map.client_cpu_us_per_task"), "ours"),
    ("retire-cluster, rc.aio `submit`", vals("ours", "metrics.aio.futures.tasks_per_s"),
     vals("ours", "metrics.aio.futures.client_cpu_us_per_task"), "ours"),
    ("retire-cluster, rc.aio `map`", vals("ours", "metrics.aio.map.tasks_per_s"),
     vals("ours", "metrics.aio.map.client_cpu_us_per_task"), "ours"),
    ("Celery+Redis, per-task `delay` loop", c_tp, [], "celery"),
    ("Celery+Redis, `group`", vals("celery", "metrics.a2_bulk_group.tasks_per_s"), [], "celery"),
]
print("| Python client | throughput (tasks/s) | ours/Celery loop | client CPU per task (us) |")
print("| --- | --- | --- | --- |")
for name, tp, cpu, who in rows_out:
    if not tp:
        continue
    r = ratio(med(tp), med(c_tp)) if who == "ours" else "-"
    print(f"| {name} | {cell(tp)} | {r} | {cell(cpu)} |")
print()
print("| Python client | latency p50 (ms) | latency p99 (ms) | Celery/ours p50 | Celery/ours p99 |")
print("| --- | --- | --- | --- | --- |")
o_p50, o_p99 = vals("ours", "metrics.latency.p50_ms"), vals("ours", "metrics.latency.p99_ms")
c_p99 = vals("celery", "metrics.b_latency.p99_ms")
if o_p50:
    print(f"| retire-cluster `submit(...).result()` | {cell(o_p50)} | {cell(o_p99)} "
          f"| {ratio(med(c_p50), med(o_p50))} | {ratio(med(c_p99), med(o_p99))} |")
if c_p50:
    print(f"| Celery+Redis `delay(...).get()` | {cell(c_p50)} | {cell(c_p99)} | - | - |")
print()
print(f"Median [min-max] of {info.get('reps', '?')} repetitions each, one run "
      f"({info.get('started', '?')} - {info.get('finished', '?')}) on {info.get('machine', '?')}; "
      f"ours at {info.get('git', '?')}. Ratios compare medians; above 1x means ours is better.")
om = next((r["result"]["meta"] for r in rows if r.get("system") == "ours"), None)
if om:
    print(f"- ours: `python/bench.py` (Python {om.get('python')}, grpcio {om.get('grpcio')}, "
          f"protobuf {om.get('protobuf')}) against `retire-cluster-main` (durable SQLite store, "
          f"default flags{info.get('main_flags', '')}) + {info.get('workers')} local workers"
          f"{info.get('worker_flags', '')}, fresh per repetition; {om.get('n')} echo tasks per "
          f"throughput phase, {om.get('lat')} sequential round trips.")
cm = next((r["result"]["meta"] for r in rows if r.get("system") == "celery"), None)
if cm:
    n_lat = next((get(r["result"], "metrics.b_latency.n") for r in rows if r.get("system") == "celery"), "?")
    print(f"- Celery: the peers' `celery/run.sh` unchanged ({cm.get('versions', '')}; "
          f"{cm.get('worker', '')}); {cm.get('n')} no-op tasks per throughput run, {n_lat} round trips.")
cl = vals("ours", "metrics.futures.cluster_cpu_us_per_task")
if cl:
    print(f"- cluster (coordinator + workers) CPU per task in the futures phase: {cell(cl)} us.")
noise = [(n, vals(k, p)) for n, k, p in (("ours (futures)", "ours", "metrics.futures.cpu.other_cores"),
                                         ("Celery (loop)", "celery", "metrics.a_throughput.cpu.other_cores"))]
noise = [f"{n} {', '.join(f'{x:.2f}' for x in v)}" for n, v in noise if v]
if noise:
    print(f"- CPU used by other processes during the throughput runs (cores, per run): {'; '.join(noise)}.")
loads = [f'{r["result"].get("load_before", [0])[0]:.1f}' for r in rows if r.get("system") in ("ours", "celery")]
if loads:
    print(f"- 1-min load average before each run, in order: {', '.join(loads)}.")
PYEOF
}

if [[ "${1:-}" == --table ]]; then
  render_table "${2:?usage: $0 --table FILE.jsonl}"
  exit 0
fi

REPS=${REPS:-3}
N=${N:-20000}
LAT=${LAT:-2000}
PHASES=${PHASES:-futures,map,latency}
WORKERS=${WORKERS:-2}
WORKER_FLAGS=${WORKER_FLAGS:-}
MAIN_FLAGS=${MAIN_FLAGS:-}
OURS=${OURS:-1}
CELERY=${CELERY:-1}
CELERY_N=${CELERY_N:-}
CELERY_LAT=${CELERY_LAT:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
PROFILE=${PROFILE:-}
BUILD=${BUILD:-build}
PEERS_DIR=${PEERS_DIR:-../shared/peers}
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"
[[ "$PEERS_DIR" == /* ]] || PEERS_DIR="$ROOT/$PEERS_DIR"

die() { echo "python_compare.sh: $*" >&2; exit 1; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# Check everything before the first measurement: a missing binary or package fails in
# seconds, not after minutes of measuring.
if [[ "$OURS" == 1 ]]; then
  for b in coordinator/retire-cluster-main worker/retire-cluster-worker client/retire-cluster; do
    [[ -x "$BUILD/$b" ]] || die "no $BUILD/$b; build it (./scripts/build.sh) or set BUILD="
  done
  [[ -n "$(ls "$ROOT"/python/retire_cluster/v1/*_pb2.py 2>/dev/null)" ]] \
    || die "no generated stubs in python/retire_cluster/v1; run: $PY python/gen_stubs.py"
  PYTHONPATH="$ROOT/python" "$PY" -c 'import retire_cluster' \
    || die "$PY cannot import retire_cluster from $ROOT/python (error above)"
fi
command -v jq >/dev/null || die "no jq"
if [[ "$CELERY" == 1 ]]; then
  [[ -x "$PEERS_DIR/celery/run.sh" ]] || die "no peer script $PEERS_DIR/celery/run.sh"
  command -v redis-server >/dev/null && "$PY" -c 'import celery, redis' 2>/dev/null \
    || die "Celery prerequisites missing; as root: apt-get install -y --no-install-recommends redis-server python3-celery python3-redis"
fi
[[ -z "$PROFILE" ]] || mkdir -p "$PROFILE"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUTDIR="$ROOT/bench/results"
JSONL="$OUTDIR/python-compare-$STAMP.jsonl"
MD="$OUTDIR/python-compare-$STAMP.md"
mkdir -p "$OUTDIR"

# scripts/lib.sh: rc_start_main / rc_start_worker (ephemeral ports, data in $RC_TMP) and an EXIT
# trap that stops every process they started. Ours replaces that trap so that the scratch dir
# goes too; both run on any exit (error, timeout, Ctrl-C).
source "$ROOT/scripts/lib.sh"
RUNDIR=$(mktemp -d /tmp/rc-pycompare.XXXXXX)
cleanup() { rc_cleanup; rm -rf "$RUNDIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

machine="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] || git_rev+=" (with uncommitted changes)"
started=$(date -u '+%Y-%m-%d %H:%M')
echo "== python compare: REPS=$REPS ours N=$N LAT=$LAT phases=$PHASES workers=$WORKERS on $machine"
echo "== raw results $JSONL"

# append_row SYSTEM REP JSON: one tagged line in the .jsonl
append_row() {
  jq -c -n --arg s "$1" --argjson rep "$2" --argjson r "$3" '{system: $s, rep: $rep, result: $r}' >>"$JSONL"
}

run_ours() {
  local rep=$1 i pids out prof=()
  # A fresh cluster: no RC_PORT left from the last repetition, an empty data dir.
  unset RC_PORT RC_HTTP_PORT
  rm -rf "${RC_TMP:?}"/*
  # shellcheck disable=SC2086
  rc_start_main "$BUILD" $MAIN_FLAGS
  pids=$RC_MAIN_PID
  for i in $(seq 1 "$WORKERS"); do
    # shellcheck disable=SC2086
    rc_start_worker "$BUILD" "bench-w$i" $WORKER_FLAGS
    pids+=",$RC_LAST_WORKER_PID"
  done
  [[ -z "$PROFILE" ]] || prof=(--profile "$PROFILE/futures-rep$rep.prof")
  echo "-- ours rep $rep/$REPS: coordinator $RC_ADDR, cluster pids $pids, load $(load1)"
  out="$RUNDIR/ours-$rep.out"
  if ! PYTHONPATH="$ROOT/python" timeout "$RUN_TIMEOUT" "$PY" "$ROOT/python/bench.py" --target "$RC_ADDR" \
      --n "$N" --lat "$LAT" --phases "$PHASES" --cluster-pids "$pids" --rep "$rep" "${prof[@]}" \
      >"$out" 2>"$RUNDIR/ours-$rep.err"; then
    tail -n 30 "$RUNDIR/ours-$rep.err" >&2
    echo "-- coordinator log (end):" >&2
    tail -n 10 "$RC_TMP/main.log" >&2 || true
    die "ours rep $rep failed or timed out after at most ${RUN_TIMEOUT}s (bench.py stderr and coordinator log above)"
  fi
  [[ -z "$PROFILE" ]] || cp "$RUNDIR/ours-$rep.err" "$PROFILE/futures-rep$rep.txt"
  local json
  json=$(sed -n 's/^RESULT //p' "$out" | tail -n 1)
  [[ -n "$json" ]] || die "ours rep $rep printed no RESULT line: $(head -c 500 "$out")"
  jq -c '.metrics | with_entries(.value |= ({tasks_per_s, p50_ms, p99_ms, client_cpu_us_per_task} | with_entries(select(.value != null))))' \
    <<<"$json" | sed 's/^/   /'
  append_row ours "$rep" "$json"
  # Stop this repetition's cluster (workers first) before the next one starts.
  for ((i = ${#RC_PIDS[@]} - 1; i >= 0; i--)); do rc_stop "${RC_PIDS[i]}" 10 || true; done
  RC_PIDS=()
}

if [[ "$OURS" == 1 ]]; then
  for rep in $(seq 1 "$REPS"); do run_ours "$rep"; done
fi

# The peers' folder is read-only by intent and celery/run.sh writes its results next to
# itself, so run a private copy; its RESULT lines on stdout are what we keep. N and LAT are our
# knobs: unset them so that they do not leak into the peer's script, which reads the same names.
if [[ "$CELERY" == 1 ]]; then
  cp -r "$PEERS_DIR" "$RUNDIR/peers"
  chmod -R u+w "$RUNDIR/peers"
  penv=(REPS="$REPS" PY="$PY")
  [[ -z "$CELERY_N" ]] || penv+=(N="$CELERY_N")
  [[ -z "$CELERY_LAT" ]] || penv+=(LAT="$CELERY_LAT")
  echo "-- celery: celery/run.sh (REPS=$REPS), load $(load1)"
  # timeout signals run.sh's whole process group: its bench.py dies and its EXIT trap stops
  # redis and the celery worker by PID.
  timeout $((RUN_TIMEOUT * REPS)) env -u N -u LAT "${penv[@]}" "$RUNDIR/peers/celery/run.sh" \
      >"$RUNDIR/celery.log" 2>&1 \
    || { tail -n 30 "$RUNDIR/celery.log" >&2; die "celery run failed or timed out (its output's end above)"; }
  grep -E '^(==|-- rep)' "$RUNDIR/celery.log" | cut -c1-200
  got=0
  while IFS= read -r line; do
    rj=${line#RESULT }
    append_row celery "$(jq '.rep' <<<"$rj")" "$rj"
    got=$((got + 1))
  done < <(grep '^RESULT ' "$RUNDIR/celery.log")
  [[ "$got" -eq "$REPS" ]] || { tail -n 30 "$RUNDIR/celery.log" >&2; die "celery gave $got of $REPS results"; }
fi

# One info line carries what the table's notes need besides the measurements.
jq -c -n --argjson reps "$REPS" --arg started "$started" --arg finished "$(date -u '+%H:%M UTC')" \
  --arg machine "$machine" --arg git "$git_rev" --argjson workers "$WORKERS" \
  --arg main_flags "${MAIN_FLAGS:+, $MAIN_FLAGS}" --arg worker_flags "${WORKER_FLAGS:+ ($WORKER_FLAGS)}" \
  '{kind: "info", reps: $reps, started: $started, finished: $finished, machine: $machine,
    git: $git, workers: $workers, main_flags: $main_flags, worker_flags: $worker_flags}' >>"$JSONL"

echo
render_table "$JSONL" | tee "$MD"
echo
echo "== table $MD"
echo "== raw   $JSONL"
