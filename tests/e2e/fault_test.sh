#!/usr/bin/env bash
# Fault tests on the real binaries: kill -9 of the coordinator (restart on the same data
# dir), kill -9 of a worker mid-task, handler retries with backoff (and none for a
# refused payload), idempotency across a restart, and (as root, with nft) a network
# partition whose late result is fenced.
# usage: fault_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
cli_prefix=()  # a command to run the CLI under (ip netns exec NS), for the partition test
cli() { "${cli_prefix[@]}" "$build/client/retire-cluster" --coordinator "$RC_ADDR" "$@"; }
field() { cli get "$1" --json | jq -r "$2"; }
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { local name=$1; shift; if "$@"; then ok; else bad "$name"; fi; }
# eventually SECONDS COMMAND...: retries the command every 0.1 s until it succeeds.
eventually() {
  local limit=$1; shift
  for _ in $(seq $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
status_is() { [ "$(field "$1" .status)" = "$2" ]; }
online() { cli workers --json | jqe --arg d "$1" '.workers[] | select(.device_id == $d and .status == "online")'; }
offline() { cli workers --json | jqe --arg d "$1" '.workers[] | select(.device_id == $d and .status == "offline")'; }

cat >"$RC_TMP/main.yaml" <<'YAML'
heartbeat_interval_seconds: 0.5
offline_after_seconds: 2
reconnect_grace_seconds: 2
retry_backoff_initial_seconds: 0.4
retry_backoff_max_seconds: 2
log_level: warn
YAML
printf 'reconnect_initial_seconds: 0.1\nreconnect_max_seconds: 0.5\nlog_level: warn\n' >"$RC_TMP/worker.yaml"

rc_start_main "$build" --config "$RC_TMP/main.yaml" || exit 1
rc_start_worker "$build" w1 --tags a --slots 2 --config "$RC_TMP/worker.yaml" || exit 1
w1=$RC_LAST_WORKER_PID
rc_start_worker "$build" w2 --tags a --slots 2 --config "$RC_TMP/worker.yaml" || exit 1
w2=$RC_LAST_WORKER_PID

# --- 1. kill -9 the coordinator with finished, running and queued tasks -----------
finished=()
for i in 1 2 3; do finished+=("$(cli submit echo --payload "{\"n\":$i}" --wait --json | jq -r .task_id)"); done
before=$(for id in "${finished[@]}"; do field "$id" '.result|tostring'; done)
# Queued first: the sleeps start with their submit, and five more CLI calls after them
# could outlast a short sleep on a loaded machine before the check below sees it run.
queued=()
for i in 1 2 3 4; do queued+=("$(cli submit echo --payload "{\"q\":$i}" --tag later)"); done
keyed=$(cli submit echo --idempotency-key job-7 --payload '{"k":7}' --tag later)
running=()
for i in 1 2; do running+=("$(cli submit sleep --payload '{"duration":3}' --tag a)"); done
if eventually 5 status_is "${running[1]}" running; then ok; else
  bad "sleeps are running before the crash"
  cli get "${running[1]}" --json >&2
  tail -n 20 "$RC_TMP/w1.log" "$RC_TMP/w2.log" "$RC_TMP/main.log" >&2
fi
kill -KILL "$RC_MAIN_PID"
wait "$RC_MAIN_PID" 2>/dev/null
rc_start_main "$build" --config "$RC_TMP/main.yaml" || exit 1
after=$(for id in "${finished[@]}"; do field "$id" '.result|tostring'; done)
check "finished results unchanged after kill -9" [ "$before" = "$after" ]
check "workers reconnect by themselves (w1)" eventually 10 online w1
check "workers reconnect by themselves (w2)" eventually 10 online w2
for id in "${running[@]}"; do
  check "running task $id finishes after the restart" eventually 10 status_is "$id" success
done
check "the same idempotency key gives the same task after a restart" \
  [ "$(cli submit echo --idempotency-key job-7 --payload '{"k":7}' --tag later)" = "$keyed" ]
rc_start_worker "$build" w3 --tags later --slots 2 --config "$RC_TMP/worker.yaml" || exit 1
w3=$RC_LAST_WORKER_PID
for i in "${!queued[@]}"; do
  id=${queued[$i]}
  check "queued task $id runs with its own result" eventually 10 status_is "$id" success
  check "... result of $id" [ "$(field "$id" '.result.q')" = "$((i + 1))" ]
done
check "keyed task ran" eventually 10 status_is "$keyed" success

# --- 2. kill -9 a worker mid-task --------------------------------------------------
id=$(cli submit sleep --payload '{"duration":2}' --tag a)
check "task starts" eventually 5 status_is "$id" running
victim=$(field "$id" .worker_device_id)
victim_pid=$w1; [ "$victim" = w2 ] && victim_pid=$w2
killed_at=$(date +%s%3N)
kill -KILL "$victim_pid"
check "the dead worker shows offline within the offline deadline" eventually 2 offline "$victim"
check "the task finishes on another worker" eventually 15 status_is "$id" success
check "... in attempt 2" [ "$(field "$id" .attempts)" = 2 ]
check "... not on the dead worker" [ "$(field "$id" .worker_device_id)" != "$victim" ]
requeued_at=$(date -d "$(field "$id" '.attempt_history[1].assigned_at')" +%s%3N)
check "requeue within about 5 s of the kill ($((requeued_at - killed_at)) ms)" [ $((requeued_at - killed_at)) -lt 5500 ]

# --- 3. handler failure: retried with backoff, then failed --------------------------
# A payload the handler refuses fails at once: every retry would be refused alike.
id=$(cli submit sleep --payload '{"duration":"forever"}' --max-retries 2)
check "a refused payload ends failed" eventually 15 status_is "$id" failed
check "... after 1 attempt, not retried" [ "$(field "$id" '[.attempts, (.attempt_history|length)] | join(",")')" = "1,1" ]
# A failure that may pass next time (nothing listens on port 1) is retried.
rc_start_worker "$build" w4 --tags h --slots 1 --allow http_request --config "$RC_TMP/worker.yaml" || exit 1
id=$(cli submit http_request --payload '{"url":"http://127.0.0.1:1/","timeout":2}' --tag h --max-retries 2)
check "a failing handler ends failed" eventually 15 status_is "$id" failed
check "... after 3 attempts" [ "$(field "$id" '.attempt_history|length')" = 3 ]
t0=$(date -d "$(field "$id" '.attempt_history[0].finished_at')" +%s%3N)
t1=$(date -d "$(field "$id" '.attempt_history[1].assigned_at')" +%s%3N)
t2=$(date -d "$(field "$id" '.attempt_history[1].finished_at')" +%s%3N)
t3=$(date -d "$(field "$id" '.attempt_history[2].assigned_at')" +%s%3N)
check "backoff before retry 1 ($((t1 - t0)) ms >= 200)" [ $((t1 - t0)) -ge 200 ]
check "backoff before retry 2 ($((t3 - t2)) ms >= 400)" [ $((t3 - t2)) -ge 400 ]

# --- 4. network partition: the late result of a cut-off worker is fenced -----------
# Every address lives in namespaces this test makes: the coordinator (and the CLI, and
# the worker that takes the retry) in namespace A, the worker to cut off in B, one veth
# pair between them, and nftables in B to cut the link. Nothing is configured in the
# machine's own namespace.
part_a=rc-part-a-$$ part_b=rc-part-b-$$
# Deletes namespaces this test made: ours, and those a killed earlier run left behind
# (named after its pid, which is gone). Deleting a namespace also removes its veth end.
partition_cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in rc-part-[ab]-*) ;; *) continue ;; esac
    pid=${ns##*-}
    if [ "$pid" = $$ ] || ! kill -0 "$pid" 2>/dev/null; then ip netns del "$ns" 2>/dev/null; fi
  done
}
partition_test() {
  local a=(ip netns exec "$part_a") b=(ip netns exec "$part_b")
  partition_cleanup  # leftovers of a run that was killed (SIGKILL runs no trap)
  # Processes first (they run inside the namespaces), then the namespaces; on any exit.
  trap 'rc_cleanup; partition_cleanup' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ip netns add "$part_a" && ip netns add "$part_b" || return 1
  ip link add veth-a netns "$part_a" type veth peer name veth-b netns "$part_b" &&
    "${a[@]}" ip addr add 10.231.7.1/24 dev veth-a && "${a[@]}" ip link set veth-a up &&
    "${a[@]}" ip link set lo up &&
    "${b[@]}" ip addr add 10.231.7.2/24 dev veth-b && "${b[@]}" ip link set veth-b up &&
    "${b[@]}" ip link set lo up || return 1
  check "partition: no address of the test in the machine's own namespace" \
    bash -c '! ip -o addr show | grep -q "10\.231\.7\."'
  # A second coordinator in namespace A: its clients are not loopback, so it needs tokens.
  openssl rand -hex 24 >"$RC_TMP/part-join"
  local admin; admin=$(openssl rand -hex 24)
  echo "admin $admin" >"$RC_TMP/part-clients"
  export RETIRE_CLUSTER_TOKEN=$admin
  "${a[@]}" "$build/coordinator/retire-cluster-main" --host 10.231.7.1 --port 0 --http-port 0 \
    --data-dir "$RC_TMP/part-data" --config "$RC_TMP/main.yaml" --join-token-file "$RC_TMP/part-join" \
    --client-tokens-file "$RC_TMP/part-clients" >"$RC_TMP/part.out" 2>"$RC_TMP/part.log" &
  RC_PIDS+=($!)
  local addr=""
  for _ in $(seq 50); do
    addr=$(sed -n 's/.* listening on \(10\.231\.7\.1:[0-9]*\) http .*$/\1/p' "$RC_TMP/part.out"); [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || return 1
  local saved=$RC_ADDR; RC_ADDR=$addr
  cli_prefix=("${a[@]}")  # the CLI talks to it from inside namespace A
  "${b[@]}" "$build/worker/retire-cluster-worker" --join "$addr" --device-id cut --tags p --slots 1 \
    --data-dir "$RC_TMP/cut" --config "$RC_TMP/worker.yaml" --token-file "$RC_TMP/part-join" 2>"$RC_TMP/cut.log" &
  RC_PIDS+=($!)
  check "partition: worker in namespace B joins across the veth" eventually 10 online cut
  # Long enough that the cut lands before attempt 1 ends, on a loaded machine too.
  local id; id=$(cli submit sleep --payload '{"duration":4}' --tag p --max-retries 1)
  check "partition: task runs on the worker in namespace B" eventually 5 status_is "$id" running
  "${b[@]}" nft -f - <<NFT || return 1
table inet rcpart {
  chain out { type filter hook output priority 0; ip daddr 10.231.7.1 drop; }
  chain in { type filter hook input priority 0; ip saddr 10.231.7.1 drop; }
}
NFT
  check "partition: the cut-off worker goes offline" eventually 5 offline cut
  # Another worker (namespace A) takes the retry while "cut" finishes attempt 1 unheard.
  "${a[@]}" "$build/worker/retire-cluster-worker" --join "$addr" --device-id other --tags p --slots 1 \
    --data-dir "$RC_TMP/other" --config "$RC_TMP/worker.yaml" --token-file "$RC_TMP/part-join" 2>"$RC_TMP/other.log" &
  RC_PIDS+=($!)
  check "partition: the retry succeeds on another worker" eventually 15 status_is "$id" success
  local before; before=$(cli get "$id" --json | jq -c .)
  "${b[@]}" nft delete table inet rcpart
  check "partition: the cut-off worker comes back (and sends its late result)" eventually 30 online cut
  sleep 1  # let the late result arrive; it must change nothing
  local recorded; recorded=$(field "$id" '[.worker_device_id, .attempts, .attempt_history[0].status] | join(",")')
  check "partition: the task is recorded once, from attempt 2 on the other worker ($recorded)" [ "$recorded" = "other,2,failed" ]
  check "partition: the late result was fenced (task unchanged)" [ "$(cli get "$id" --json | jq -c .)" = "$before" ]
  RC_ADDR=$saved
  cli_prefix=()
  unset RETIRE_CLUSTER_TOKEN
}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: network partition test needs root (network namespaces, nftables)"
elif ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
  echo "SKIP: network partition test needs nft and ip (nftables, iproute2)"
else
  partition_test || bad "partition setup failed"
fi

check "SIGTERM stops the coordinator cleanly" rc_stop "$RC_MAIN_PID"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
