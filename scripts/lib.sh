# Shared by the demo and the end-to-end tests: start binaries on 127.0.0.1 with
# ephemeral ports, and stop everything they started on exit.
# shellcheck shell=bash

RC_PIDS=()
RC_TMP=$(mktemp -d /tmp/retire-cluster.XXXXXX)

rc_cleanup() {
  for pid in "${RC_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${RC_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$RC_TMP"
}
trap rc_cleanup EXIT

# rc_start_main BUILD_DIR [FLAGS...]: starts the coordinator on RC_PORT (default: a
# free port) with its data in $RC_TMP/main-data (so a restart finds it again); sets
# RC_MAIN_PID, RC_PORT and RC_ADDR (127.0.0.1:PORT).
rc_start_main() {
  local build=$1; shift
  "$build/coordinator/retire-cluster-main" --host 127.0.0.1 --port "${RC_PORT:-0}" --http-port "${RC_HTTP_PORT:-0}" \
    --data-dir "$RC_TMP/main-data" "$@" >"$RC_TMP/main.out" 2>>"$RC_TMP/main.log" &
  RC_MAIN_PID=$!
  RC_PIDS+=("$RC_MAIN_PID")
  for _ in $(seq 100); do
    RC_ADDR=$(sed -n 's/.* listening on \(127\.0\.0\.1:[0-9]*\) http .*$/\1/p' "$RC_TMP/main.out")
    RC_HTTP=$(sed -n 's/.* http \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$RC_TMP/main.out")
    if [ -n "$RC_ADDR" ]; then
      RC_PORT=${RC_ADDR##*:}
      RC_HTTP_PORT=${RC_HTTP##*:}
      return 0
    fi
    kill -0 "$RC_MAIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "coordinator did not start:" >&2
  cat "$RC_TMP/main.log" >&2
  return 1
}

# rc_start_worker BUILD_DIR DEVICE_ID [FLAGS...]: starts a worker joined to RC_ADDR and
# waits until the coordinator lists it online; sets RC_LAST_WORKER_PID.
rc_start_worker() {
  local build=$1 device=$2; shift 2
  "$build/worker/retire-cluster-worker" --join "$RC_ADDR" --device-id "$device" \
    --data-dir "$RC_TMP/$device" "$@" 2>"$RC_TMP/$device.log" &
  RC_LAST_WORKER_PID=$!
  RC_PIDS+=("$RC_LAST_WORKER_PID")
  for _ in $(seq 100); do
    if "$build/client/retire-cluster" --coordinator "$RC_ADDR" workers 2>/dev/null \
        | grep -q "^$device  *online"; then
      return 0
    fi
    sleep 0.1
  done
  echo "worker $device did not come online:" >&2
  cat "$RC_TMP/$device.log" >&2
  return 1
}

# rc_stop PID [SECONDS]: SIGTERM and wait; fails if it does not exit 0 in time.
rc_stop() {
  local pid=$1 limit=${2:-5}
  kill -TERM "$pid"
  for _ in $(seq $((limit * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      return $?
    fi
    sleep 0.1
  done
  echo "process $pid did not stop within ${limit}s after SIGTERM" >&2
  return 1
}

# Check counters and helpers for the e2e scripts: they print "N passed, M failed" at the end.
passed=0 failed=0

check() {  # check NAME COMMAND...: the command must succeed
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name" >&2; fi
}
# expect NAME CODE PATTERN COMMAND...: exit code CODE and stdout+stderr matching PATTERN
expect() {
  local name=$1 code=$2 pattern=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$code" ] && grep -qE -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s: exit %s (want %s), output:\n%s\n' "$name" "$rc" "$code" "$out" >&2
  fi
}

# jqe [--arg N V]... FILTER: stdin holds JSON that passes FILTER (jq -e). Input that is empty
# or only whitespace fails: jq 1.6 -e exits 0 on it, which would let a check pass on a
# command that printed nothing.
jqe() {
  local in
  in=$(cat)
  [ -n "${in//[[:space:]]/}" ] || { echo "jqe: no JSON to check" >&2; return 1; }
  jq -e "$@" >/dev/null <<<"$in"
}

# Tests in timed parts (e2e scripts): `part NAME BUDGET_SECONDS` starts a part;
# `eventually SECONDS COMMAND...` retries the command every 0.2 s until it succeeds, for at
# most SECONDS and never past the current part's budget (it is always tried once).
part_end=0
part() {
  part_end=$((SECONDS + $2))
  echo "--- ${SECONDS}s: $1 (at most $2 s)"
}
eventually() {
  local end=$((SECONDS + $1)); shift
  [ "$end" -le "$part_end" ] || end=$part_end
  for _ in $(seq 300); do
    "$@" && return 0
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
  return 1
}
