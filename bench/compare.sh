#!/usr/bin/env bash
# Side-by-side comparison for bench/README.md (issue 5): our end-to-end echo
# throughput and latency against Celery+Redis and Dask distributed, all measured
# in ONE invocation on the same machine, so that the ratios are not skewed by a
# different machine, load or day. Prints a markdown table and writes it, plus
# every raw JSON result, to bench/results/compare-<timestamp>.{md,jsonl}.
#
# usage: bench/compare.sh                       # full run (peers ~3 min)
#        REPS=1 N=20000 LAT=500 bench/compare.sh
#        bench/compare.sh --table FILE.jsonl    # re-render the table of an old run
#
# Env knobs:
#   REPS=3          repetitions of every measurement (median [min-max] is reported)
#   N=200000        echo tasks per throughput run of ours
#   LAT=2000        sequential round trips per latency run of ours
#   WORKERS=2       workers for ours (2 = the issue's target setup), 16 slots each
#   SHAPE=processes ours as separate processes (--spawn-workers: retire-cluster-main and
#                   WORKERS retire-cluster-worker, the deployed shape, with CPU per task of
#                   each) or "local" (--local-workers: the whole cluster in the bench's process)
#   STORE=sqlite    --store for ours (sqlite = durable; the row label follows it)
#   DATA_DIR=       where ours keeps its store and the floor writes its fsync file (default:
#                   this run's scratch dir under /tmp)
#   FLOOR_SAMPLES=500  fsyncs and round trips per --mode floor run (one per repetition)
#   CONCURRENCY=    --concurrency for ours' throughput runs (empty: binary's default)
#   PAYLOAD_BYTES=  --payload-bytes for ours (empty: binary's default)
#   PEERS="celery dask"  peers to run; empty runs only ours
#   OURS=1          0 skips ours (e.g. to check the peer half alone)
#   PEER_N=, PEER_LAT=   override the peers' own N / LAT (empty: their defaults,
#                   the sizes documented in the peers' README)
#   BUILD=build     build dir holding bench/retire-cluster-bench (relative to the repo)
#   PEERS_DIR=../shared/peers (relative to the repo)   PY=/usr/bin/python3
#   OURS_TIMEOUT=900  seconds before one run of ours is killed
# Peers need (as root): apt-get install -y --no-install-recommends \
#   redis-server python3-celery python3-redis python3-distributed
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# Debian's interpreter: the peers' Python packages are only visible to it (a
# pyenv python3 may come first on PATH).
PY=${PY:-/usr/bin/python3}

# The table is rendered from the JSON lines alone, so an old run can be
# re-rendered and the table never holds a figure that is not in the .jsonl.
render_table() {
  "$PY" - "$1" <<'PYEOF'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
info = next((r for r in rows if r.get("kind") == "info"), {})

def get(d, path):
    for k in path.split("."):
        if isinstance(d, list) and k.isdigit() and int(k) < len(d):
            d = d[int(k)]
        elif isinstance(d, dict) and k in d:
            d = d[k]
        else:
            return None
    return d

def vals(system, kind, path):
    out = [get(r["result"], path) for r in rows
           if r.get("system") == system and r.get("kind") == kind]
    return [v for v in out if isinstance(v, (int, float))]

def num(x):
    if x is None:
        return "-"
    a = abs(x)
    return (f"{x:,.0f}" if a >= 100 else f"{x:.1f}" if a >= 10
            else f"{x:.2f}" if a >= 0.1 else f"{x:.3f}")

def med(v):
    return statistics.median(v) if v else None

def cell(v):
    return "-" if not v else f"{num(med(v))} [{num(min(v))}-{num(max(v))}]"

def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:,.1f}x" if a / b >= 10 else f"{a / b:.2f}x"

store = info.get("store", "sqlite")
shape = info.get("shape", "local")
label = "retire-cluster (durable" if store == "sqlite" else f"retire-cluster ({store} store"
label += ", separate processes)" if shape == "processes" else ")"
systems = [("ours", label,
            vals("ours", "throughput", "tasks_per_second"),
            vals("ours", "latency", "latency_ms.p50"),
            vals("ours", "latency", "latency_ms.p99"))]
names = {"celery": "Celery+Redis", "dask": "Dask distributed"}
for p in info.get("peers", []):
    systems.append((p, names.get(p, p),
                    vals(p, "peer", "metrics.a_throughput.tasks_per_s"),
                    vals(p, "peer", "metrics.b_latency.p50_ms"),
                    vals(p, "peer", "metrics.b_latency.p99_ms")))

o_tp, o_p50, o_p99 = (med(x) for x in systems[0][2:])
print("| system | throughput (tasks/s) | latency p50 (ms) | latency p99 (ms) "
      "| throughput ours/peer | p50 peer/ours | p99 peer/ours |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for key, name, tp, p50, p99 in systems:
    if key == "ours":
        r = ("-", "-", "-")
    else:
        r = (ratio(o_tp, med(tp)), ratio(med(p50), o_p50), ratio(med(p99), o_p99))
    print(f"| {name} | {cell(tp)} | {cell(p50)} | {cell(p99)} | {r[0]} | {r[1]} | {r[2]} |")

print()
print(f"Median [min-max] of {info.get('reps', '?')} repetitions per system, all in one run "
      f"({info.get('started', '?')} - {info.get('finished', '?')}), on {info.get('machine', '?')}; "
      f"ours at {info.get('git', '?')}.")
print(f"Ratios compare medians; above 1x means ours is better.")
oc = [r["result"] for r in rows if r.get("system") == "ours" and r.get("kind") == "throughput"]
if oc:
    how = "--spawn-workers" if shape == "processes" else "--local-workers"
    print(f"- ours: `retire-cluster-bench {how} {info.get('workers')} --slots 16 --store {store}`, "
          f"throughput {oc[0].get('tasks')} echo tasks per run{info.get('ours_extra', '')}, "
          f"latency {info.get('lat')} sequential round trips per run.")
for p in info.get("peers", []):
    pr = [r["result"] for r in rows if r.get("system") == p and r.get("kind") == "peer"]
    if pr:
        m = pr[0].get("meta", {})
        n_lat = get(pr[0], "metrics.b_latency.n")
        print(f"- {names.get(p, p)}: `{p}/run.sh` from the peers' scripts ({m.get('versions', '')}); "
              f"throughput {m.get('n')} no-op tasks in a per-task submit loop, latency {n_lat} "
              f"sequential round trips.")
loads = [f"{r.get('load_before', ['?'])[0]}" for r in rows if r.get("kind") in ("throughput", "latency", "peer")]
if loads:
    print(f"- 1-min load average before each run, in order: {', '.join(loads)}.")
# CPU that other processes used during the throughput runs: a shared machine's
# noise, so a reader can tell a quiet run from a disturbed one.
noise = [(name, vals(key, "throughput" if key == "ours" else "peer",
                     "cpu.other_cores" if key == "ours" else "metrics.a_throughput.cpu.other_cores"))
         for key, name, *_ in systems]
noise = [f"{name} {', '.join(f'{x:.2f}' for x in v)}" for name, v in noise if v]
if noise:
    print(f"- CPU used by other processes during the throughput runs (cores, per run): {'; '.join(noise)}.")

# Ours against the floor of this machine (a `--mode floor` run per repetition; the latency
# runs measure their own floor too, before their round trips, and p50/floor is theirs), and
# where ours' CPU goes per task (throughput runs; with separate processes only).
floor_rows = [
    ("4 KiB write + fdatasync p50 (ms), " + (lambda f: f"{f.get('filesystem', '?')} on {f.get('device', '?')}")(
        next((r["result"]["floor"] for r in rows if r.get("kind") == "floor"), {})),
     vals("ours", "floor", "floor.fsync_ms.p50")),
    ("4 KiB fdatasync p99 (ms)", vals("ours", "floor", "floor.fsync_ms.p99")),
    ("gRPC unary round trip p50 (ms), loopback", vals("ours", "floor", "floor.grpc_unary_ms.p50")),
    ("gRPC bidi stream round trip p50 (ms), loopback", vals("ours", "floor", "floor.grpc_stream_ms.p50")),
    ("floor = fsync p50 + 2 x unary p50 (ms)", vals("ours", "floor", "floor_ms")),
    ("the floor measured by each latency run (ms)", vals("ours", "latency", "floor_ms")),
    ("latency p50 / that floor (same invocation)", vals("ours", "latency", "p50_over_floor")),
    ("4 KiB fdatasync p50 after an idle gap of 2 x unary (ms), latency runs",
     vals("ours", "latency", "floor.fsync_after_idle_ms.p50")),
    ("latency p50 / the floor with that fsync (same invocation)", vals("ours", "latency", "p50_over_floor_after_idle")),
    ("latency p99 (ms)", vals("ours", "latency", "latency_ms.p99")),
]
cpu = [("client", vals("ours", "throughput", "cpu_us_per_task.client")),
       ("coordinator", vals("ours", "throughput", "cpu_us_per_task.coordinator"))]
nw = max((len(get(r["result"], "cpu_us_per_task.workers") or []) for r in rows
          if r.get("system") == "ours" and r.get("kind") == "throughput"), default=0)
for i in range(nw):
    cpu.append((f"worker {i + 1}", vals("ours", "throughput", f"cpu_us_per_task.workers.{i}")))
cpu.append(("total", vals("ours", "throughput", "cpu_us_per_task.total")))
if not vals("ours", "throughput", "cpu_us_per_task.total"):  # --local-workers: one process
    cpu.append(("whole cluster with client, one process (`cluster_cpu_us_per_task`)",
                vals("ours", "throughput", "cluster_cpu_us_per_task")))
if any(v for _, v in floor_rows) or any(v for _, v in cpu):
    print()
    print("| ours: floor and CPU | median [min-max] |")
    print("| --- | --- |")
    for name, v in floor_rows:
        if v:
            print(f"| {name} | {cell(v)} |")
    for name, v in cpu:
        if v:
            print(f"| CPU per task (us): {name} | {cell(v)} |")
PYEOF
}

if [[ "${1:-}" == --table ]]; then
  render_table "${2:?usage: $0 --table FILE.jsonl}"
  exit 0
fi

REPS=${REPS:-3}
N=${N:-200000}
LAT=${LAT:-2000}
WORKERS=${WORKERS:-2}
SHAPE=${SHAPE:-processes}
STORE=${STORE:-sqlite}
DATA_DIR=${DATA_DIR:-}
FLOOR_SAMPLES=${FLOOR_SAMPLES:-500}
CONCURRENCY=${CONCURRENCY:-}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-}
PEERS=${PEERS-celery dask}
OURS=${OURS:-1}
PEER_N=${PEER_N:-}
PEER_LAT=${PEER_LAT:-}
OURS_TIMEOUT=${OURS_TIMEOUT:-900}
BUILD=${BUILD:-build}
PEERS_DIR=${PEERS_DIR:-../shared/peers}
[[ "$BUILD" == /* ]] || BUILD="$ROOT/$BUILD"
[[ "$PEERS_DIR" == /* ]] || PEERS_DIR="$ROOT/$PEERS_DIR"
BIN="$BUILD/bench/retire-cluster-bench"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUTDIR="$ROOT/bench/results"
JSONL="$OUTDIR/compare-$STAMP.jsonl"
MD="$OUTDIR/compare-$STAMP.md"
RUNDIR=$(mktemp -d /tmp/rc-compare.XXXXXX)
trap 'rm -rf "$RUNDIR"' EXIT
mkdir -p "$OUTDIR"
[[ -n "$DATA_DIR" ]] || DATA_DIR="$RUNDIR"
case $SHAPE in
  processes) cluster_flag=--spawn-workers ;;
  local) cluster_flag=--local-workers ;;
  *) echo "compare.sh: SHAPE: expected processes or local, got '$SHAPE'" >&2; exit 1 ;;
esac

die() { echo "compare.sh: $*" >&2; exit 1; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# Check everything before the first measurement: a missing flag or package
# should fail in seconds, not after minutes of measuring.
read -r -a peers <<<"$PEERS"
if [[ "$OURS" == 1 ]]; then
  [[ -x "$BIN" ]] || die "no $BIN; build it (cmake --build $BUILD --target retire-cluster-bench) or set BUILD="
  "$BIN" --help 2>&1 | grep -q -- "$cluster_flag" \
    || die "$BIN has no $cluster_flag (older binary?)"
  "$BIN" --help 2>&1 | grep -q -- "--mode MODE.*floor" || die "$BIN has no --mode floor (older binary?)"
  [[ -d "$DATA_DIR" ]] || die "DATA_DIR $DATA_DIR is not a directory"
fi
for p in "${peers[@]}"; do
  [[ -x "$PEERS_DIR/$p/run.sh" ]] || die "no peer script $PEERS_DIR/$p/run.sh"
  case $p in
    celery) mods="celery, redis"; command -v redis-server >/dev/null || die "no redis-server" ;;
    dask) mods="distributed" ;;
    *) mods="" ;;
  esac
  [[ -z "$mods" ]] || "$PY" -c "import $mods" 2>/dev/null \
    || die "$PY cannot import $mods; as root: apt-get install -y --no-install-recommends redis-server python3-celery python3-redis python3-distributed"
done

machine="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r)"
git_rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] || git_rev+=" (with uncommitted changes)"
ours_extra=""
[[ -z "$CONCURRENCY" ]] || ours_extra+=", --concurrency $CONCURRENCY"
[[ -z "$PAYLOAD_BYTES" ]] || ours_extra+=", --payload-bytes $PAYLOAD_BYTES"
started=$(date -u '+%Y-%m-%d %H:%M')
echo "== compare: REPS=$REPS ours N=$N LAT=$LAT workers=$WORKERS shape=$SHAPE store=$STORE peers='${PEERS}' on $machine"
echo "== raw results $JSONL"

# append_row SYSTEM KIND REP LOAD JSON: one tagged line in the .jsonl
append_row() {
  jq -c -n --arg s "$1" --arg k "$2" --argjson rep "$3" --argjson load "$4" --argjson r "$5" \
    '{system: $s, kind: $k, rep: $rep, load_before: [$load], result: $r}' >>"$JSONL"
}

# cpu_watch FILE CMD...: run CMD and write to FILE the CPU it used and the CPU
# the whole machine used meanwhile, in cores, the same way the peers' benchlib
# does: other = machine - ours is the noise from other workloads on a shared
# machine, which the table reports next to the figures.
cpu_watch() {
  "$PY" - "$@" <<'PYEOF'
import json, os, resource, subprocess, sys, time
def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
t0, m0 = time.perf_counter(), busy()
rc = subprocess.call(sys.argv[2:])
dt, dm = time.perf_counter() - t0, busy() - m0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
ours = ru.ru_utime + ru.ru_stime
with open(sys.argv[1], "w") as f:
    json.dump({"machine_cores": round(dm / dt, 2), "ours_cores": round(ours / dt, 2),
               "other_cores": round(max(0.0, dm - ours) / dt, 2)}, f)
sys.exit(rc)
PYEOF
}

# run_ours MODE TASKS REP [extra flags]: one run of ours on a fresh cluster (the bench
# makes its data dir, under DATA_DIR, and removes it), or of the floor alone (MODE floor).
run_ours() {
  local mode=$1 tasks=$2 rep=$3 dir load json args
  shift 3
  dir="$RUNDIR/ours-$mode-$rep"
  mkdir -p "$dir"
  load=$(load1)
  args=(--mode "$mode" --data-dir "$DATA_DIR" --floor-samples "$FLOOR_SAMPLES" --json)
  if [[ "$mode" == floor ]]; then
    echo "-- ours floor rep $rep/$REPS: $FLOOR_SAMPLES fsyncs and round trips of each kind, load $load"
    timeout 120 "$BIN" "${args[@]}" >"$dir/out" 2>"$dir/err" \
      || { tail -n 20 "$dir/err" >&2; die "ours floor run $rep failed (stderr above)"; }
    json=$(grep '^{' "$dir/out" | tail -n 1)
    jq -e '.floor_ms > 0' <<<"$json" >/dev/null || die "ours floor run $rep printed no floor: $(head -c 500 "$dir/out")"
    echo "   $(jq -c '{floor_ms, fsync_p50: .floor.fsync_ms.p50, unary_p50: .floor.grpc_unary_ms.p50, stream_p50: .floor.grpc_stream_ms.p50, filesystem: .floor.filesystem}' <<<"$json")"
    append_row ours floor "$rep" "$load" "$json"
    rm -rf "$dir"
    return
  fi
  echo "-- ours $mode rep $rep/$REPS: $tasks tasks, load $load"
  if ! (cd "$dir" && cpu_watch "$dir/cpu" timeout "$OURS_TIMEOUT" "$BIN" "${args[@]}" --tasks "$tasks" \
          --type echo "$cluster_flag" "$WORKERS" --slots 16 --store "$STORE" "$@" >"$dir/out" 2>"$dir/err"); then
    tail -n 20 "$dir/err" >&2
    die "ours $mode run $rep failed (stderr above)"
  fi
  # --json prints one object; take the last JSON line in case anything else reached stdout
  json=$(grep '^{' "$dir/out" | tail -n 1)
  jq -e 'type == "object" and has("tasks_per_second")' <<<"$json" >/dev/null \
    || die "ours $mode run $rep printed no result object: $(head -c 500 "$dir/out")"
  echo "   $(jq -c '{succeeded, failed, seconds, tasks_per_second, latency_ms, p50_over_floor, cpu_us_per_task}
                 | with_entries(select(.value != null))' <<<"$json")"
  # A figure with lost or failed tasks is not a result.
  jq -e --argjson n "$tasks" '.failed == 0 and .succeeded == $n' <<<"$json" >/dev/null \
    || die "ours $mode run $rep: not all $tasks tasks succeeded: $json"
  # The figures the second table needs: the floor of a latency run, CPU per component of a
  # throughput run in the deployed shape.
  if [[ "$mode" == latency ]]; then
    jq -e '.p50_over_floor > 0 and .floor_ms > 0' <<<"$json" >/dev/null || die "ours latency run $rep: no floor: $json"
  elif [[ "$SHAPE" == processes ]]; then
    jq -e '.cpu_us_per_task.coordinator > 0 and (.cpu_us_per_task.workers | length > 0)' <<<"$json" >/dev/null \
      || die "ours throughput run $rep: no cpu_us_per_task: $json"
  fi
  json=$(jq -c --slurpfile cpu "$dir/cpu" '. + {cpu: $cpu[0]}' <<<"$json")
  append_row ours "$mode" "$rep" "$load" "$json"
  rm -rf "$dir"
}

if [[ "$OURS" == 1 ]]; then
  tp_flags=()
  [[ -z "$CONCURRENCY" ]] || tp_flags+=(--concurrency "$CONCURRENCY")
  [[ -z "$PAYLOAD_BYTES" ]] || tp_flags+=(--payload-bytes "$PAYLOAD_BYTES")
  lat_flags=()
  [[ -z "$PAYLOAD_BYTES" ]] || lat_flags+=(--payload-bytes "$PAYLOAD_BYTES")
  # Interleaved: each repetition measures the floor, then throughput, then latency (which
  # measures the floor again, just before its round trips).
  for rep in $(seq 1 "$REPS"); do
    run_ours floor 0 "$rep"
    run_ours throughput "$N" "$rep" "${tp_flags[@]}"
    run_ours latency "$LAT" "$rep" "${lat_flags[@]}"
  done
fi

# The peers' folder is read-only by intent and each run.sh writes its results
# next to itself, so run a private copy; their RESULT lines on stdout are what
# we keep. N and LAT are our knobs: unset them so that they do not leak into
# the peers' scripts, which read the same names.
if [[ ${#peers[@]} -gt 0 ]]; then
  cp -r "$PEERS_DIR" "$RUNDIR/peers"
  chmod -R u+w "$RUNDIR/peers"
fi
for p in "${peers[@]}"; do
  penv=(REPS="$REPS" PY="$PY")
  [[ -z "$PEER_N" ]] || penv+=(N="$PEER_N")
  [[ -z "$PEER_LAT" ]] || penv+=(LAT="$PEER_LAT")
  echo "-- peer $p: $p/run.sh (REPS=$REPS), load $(load1)"
  env -u N -u LAT "${penv[@]}" "$RUNDIR/peers/$p/run.sh" 2>&1 | tee "$RUNDIR/$p.log" \
    | grep -E '^(==|-- rep|RESULT)' | cut -c1-200 \
    || { tail -n 30 "$RUNDIR/$p.log" >&2; die "peer $p failed (its output's end above)"; }
  got=0
  while IFS= read -r line; do
    rj=${line#RESULT }
    append_row "$p" peer "$(jq '.rep' <<<"$rj")" "$(jq '.load_before[0]' <<<"$rj")" "$rj"
    got=$((got + 1))
  done < <(grep '^RESULT ' "$RUNDIR/$p.log")
  [[ "$got" -eq "$REPS" ]] || { tail -n 30 "$RUNDIR/$p.log" >&2; die "peer $p gave $got of $REPS results"; }
done

# One info line carries what the table's notes need besides the measurements.
jq -c -n --argjson reps "$REPS" --arg started "$started" --arg finished "$(date -u '+%H:%M UTC')" \
  --arg machine "$machine" --arg git "$git_rev" --arg store "$STORE" --argjson workers "$WORKERS" --arg shape "$SHAPE" \
  --argjson lat "$LAT" --arg ours_extra "$ours_extra" --arg peers "$PEERS" \
  '{kind: "info", reps: $reps, started: $started, finished: $finished, machine: $machine,
    git: $git, store: $store, shape: $shape, workers: $workers, lat: $lat, ours_extra: $ours_extra,
    peers: ($peers | split(" ") | map(select(. != "")))}' >>"$JSONL"

echo
render_table "$JSONL" | tee "$MD"
echo
echo "== table $MD"
echo "== raw   $JSONL"
