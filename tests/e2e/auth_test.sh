#!/usr/bin/env bash
# Tokens and roles end to end on the real binaries: join tokens for workers, bearer
# tokens with roles for gRPC and HTTP clients, per-token queue limits, workers that
# accept only some submitters, admin drain, and the loopback-only rule without tokens
# (checked from a non-loopback address inside a network namespace this test creates).
# usage: auth_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
main="$build/coordinator/retire-cluster-main"
worker="$build/worker/retire-cluster-worker"
cli="$build/client/retire-cluster"

admin_tok=$(openssl rand -hex 24)
alice_tok=$(openssl rand -hex 24)
bob_tok=$(openssl rand -hex 24)
read_tok=$(openssl rand -hex 24)
join_tok=$(openssl rand -hex 24)
printf '# role token name\nadmin %s root\nsubmit %s alice\nsubmit %s bob\nread %s auditor\n' \
  "$admin_tok" "$alice_tok" "$bob_tok" "$read_tok" >"$RC_TMP/clients"
echo "$join_tok" >"$RC_TMP/join"
openssl rand -hex 24 >"$RC_TMP/wrong-join"
echo "submit short" >"$RC_TMP/bad-clients"

expect "a token shorter than 16 characters is refused at startup" 2 "at least 16 characters" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --store memory --client-tokens-file "$RC_TMP/bad-clients"
expect "a missing token file is named" 2 "/nonexistent-tokens" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --store memory --join-token-file /nonexistent-tokens

check "coordinator starts with join and client tokens" rc_start_main "$build" --log-level info \
  --join-token-file "$RC_TMP/join" --client-tokens-file "$RC_TMP/clients"
c() { "$cli" --coordinator "$RC_ADDR" "$@"; }
as() { local tok=$1; shift; "$cli" --coordinator "$RC_ADDR" --token "$tok" "$@"; }

# --- workers ---
expect "a worker without a join token is refused and exits" 1 "missing join token" \
  timeout 20 "$worker" --join "$RC_ADDR" --device-id nojoin --data-dir "$RC_TMP/nojoin"
expect "a worker with a wrong join token is refused and exits" 1 "unknown join token" \
  timeout 20 "$worker" --join "$RC_ADDR" --device-id badjoin --data-dir "$RC_TMP/badjoin" --token-file "$RC_TMP/wrong-join"
"$worker" --join "$RC_ADDR" --device-id w1 --slots 4 --data-dir "$RC_TMP/w1" --token-file "$RC_TMP/join" \
  2>"$RC_TMP/w1.log" &
RC_PIDS+=($!)
online() {
  for _ in $(seq 100); do
    as "$admin_tok" workers 2>/dev/null | grep -q "^$1  *online" && return 0
    sleep 0.1
  done
  return 1
}
check "a worker with the join token comes online" online w1

# --- clients: authentication ---
expect "a client without a token is refused (exit 6)" 6 "missing token" c stats
expect "a client with an unknown token is refused (exit 6)" 6 "unknown token" as "$(openssl rand -hex 24)" stats
expect "the token may come from \$RETIRE_CLUSTER_TOKEN" 0 "online" env RETIRE_CLUSTER_TOKEN="$read_tok" "$cli" --coordinator "$RC_ADDR" stats

# --- roles ---
a_task=$(as "$alice_tok" submit sleep --payload '{"duration": 30}')
b_task=$(as "$bob_tok" submit sleep --payload '{"duration": 30}')
check "alice (submit role) can submit" test -n "$a_task"
check "bob (submit role) can submit" test -n "$b_task"
expect "the task records its owner" 0 '"owner": "alice"' as "$alice_tok" get "$a_task" --json
expect "bob cannot cancel alice's task" 6 "belongs to another submitter" as "$bob_tok" cancel "$a_task"
expect "bob cannot read alice's task" 6 "belongs to another submitter" as "$bob_tok" get "$a_task"
expect "bob cannot wait for alice's task" 6 "belongs to another submitter" as "$bob_tok" wait "$a_task" --timeout 5
bob_list=$(as "$bob_tok" list --json)
check "bob's list shows only his tasks" jqe --arg a "$a_task" --arg b "$b_task" \
  '([.tasks[].task_id] | index($b) != null) and ([.tasks[].task_id] | index($a) == null)' <<<"$bob_list"
expect "the read role cannot submit" 6 "read-only" as "$read_tok" submit echo
expect "the read role cannot cancel" 6 "read-only" as "$read_tok" cancel "$a_task"
expect "the read role reads anyone's task" 0 "$a_task" as "$read_tok" get "$a_task"
expect "the submit role cannot drain workers" 6 "admin role" as "$alice_tok" drain w1
expect "alice cancels her own task" 0 "cancelled $a_task" as "$alice_tok" cancel "$a_task"
expect "the admin cancels bob's task" 0 "cancelled $b_task" as "$admin_tok" cancel "$b_task"
expect "the cancel names who did it" 0 "cancelled by root" as "$bob_tok" get "$b_task"
k1=$(as "$alice_tok" submit echo --idempotency-key same-key)
k2=$(as "$bob_tok" submit echo --idempotency-key same-key)
check "idempotency keys are per submitter" test -n "$k1" -a -n "$k2" -a "$k1" != "$k2"

# --- admin drain ---
expect "the admin drains a worker" 0 "drained" as "$admin_tok" drain w1
d_task=$(as "$alice_tok" submit echo)
sleep 0.5
expect "a drained worker gets no new task" 0 "queued" as "$alice_tok" get "$d_task"
expect "the admin lifts the drain" 0 "takes tasks again" as "$admin_tok" drain w1 --undo
expect "the queued task then runs" 0 "success" as "$alice_tok" wait "$d_task" --timeout 10

# --- HTTP bridge ---
# http METHOD PATH [TOKEN] [BODY]: prints "CODE BODY" (Debian's python; no curl here).
http() {
  /usr/bin/python3 - "http://$RC_HTTP$2" "$1" "${3:-}" "${4:-}" <<'PY'
import sys, urllib.request, urllib.error
url, method, token, body = sys.argv[1:5]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
if token: req.add_header("Authorization", "Bearer " + token)
if body: req.add_header("Content-Type", "application/json")
try:
    r = urllib.request.urlopen(req, timeout=5); print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
PY
}
expect "HTTP without a token is 401" 0 "^401 .*missing token" http GET /stats
expect "HTTP with an unknown token is 401" 0 "^401 .*unknown token" http GET /stats "$(openssl rand -hex 24)"
expect "HTTP GET with the read token is 200" 0 "^200 " http GET /workers "$read_tok"
expect "HTTP submit with the read token is 403" 0 "^403 .*read-only" http POST /tasks "$read_tok" '{"task_type":"echo"}'
h_task=$(http POST /tasks "$alice_tok" '{"task_type":"echo"}' | sed -n 's/^201 .*"task_id":"\([^"]*\)".*/\1/p')
check "HTTP submit with alice's token is 201" test -n "$h_task"
expect "HTTP: bob cannot read alice's task (403)" 0 "^403 .*another submitter" http GET "/tasks/$h_task" "$bob_tok"
expect "HTTP: bob cannot cancel alice's task (403)" 0 "^403 " http DELETE "/tasks/$h_task" "$bob_tok"
expect "HTTP: alice reads her task" 0 "^200 .*\"owner\":\"alice\"" http GET "/tasks/$h_task" "$alice_tok"
expect "HTTP: only the admin drains" 0 "^403 " http POST /workers/w1/drain "$alice_tok"
expect "HTTP: /healthz needs no token" 0 "^200 " http GET /healthz

# --- a worker that accepts only some submitters ---
"$worker" --join "$RC_ADDR" --device-id only-alice --slots 2 --data-dir "$RC_TMP/oa" --token-file "$RC_TMP/join" \
  --accept-submitters alice --tags private 2>"$RC_TMP/oa.log" &
RC_PIDS+=($!)
check "a worker that accepts only alice comes online" online only-alice
a_priv=$(as "$alice_tok" submit echo --tag private)
b_priv=$(as "$bob_tok" submit echo --tag private)
expect "alice's task runs on it" 0 "only-alice" as "$alice_tok" wait "$a_priv" --timeout 10
sleep 0.5
expect "bob's task waits, saying why" 0 "does not accept tasks of submitter 'bob'" as "$bob_tok" get "$b_priv"

# --- tokens never reach the logs ---
leaked=0
for t in "$admin_tok" "$alice_tok" "$bob_tok" "$read_tok" "$join_tok"; do
  grep -rqF "$t" "$RC_TMP"/*.log "$RC_TMP/main.out" && leaked=1
done
check "no token appears in any log" test "$leaked" -eq 0
rc_stop "$RC_MAIN_PID"

# --- per-token queue limit ---
printf 'max_queued_per_token: 2\nclient_tokens:\n  - "submit %s alice"\n' "$alice_tok" >"$RC_TMP/limit.yaml"
RC_PORT=0 RC_HTTP_PORT=0 check "coordinator starts with a queue limit of 2 per token" \
  rc_start_main "$build" --store memory --config "$RC_TMP/limit.yaml"
as "$alice_tok" submit echo >/dev/null && as "$alice_tok" submit echo >/dev/null
expect "a third queued task is refused naming the limit" 1 "max_queued_per_token" as "$alice_tok" submit echo
expect "over the limit on HTTP is 429" 0 "^429 .*max_queued_per_token" http POST /tasks "$alice_tok" '{"task_type":"echo"}'
rc_stop "$RC_MAIN_PID"

# --- without tokens: loopback only (seen from a non-loopback address in our own netns) ---
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
  cat >"$RC_TMP/netns.sh" <<NS
set -u
ip link set lo up && ip link add rc-a type veth peer name rc-b && ip addr add 10.231.9.1/24 dev rc-a &&
  ip link set rc-a up && ip link set rc-b up || exit 90
"$main" --host 0.0.0.0 --port 0 --http-port 0 --store memory >"$RC_TMP/ns-main.out" 2>"$RC_TMP/ns-main.log" &
pid=\$!
trap 'kill \$pid 2>/dev/null; wait \$pid 2>/dev/null' EXIT
port=""
for _ in \$(seq 100); do
  port=\$(sed -n 's/.* listening on [^ ]*:\([0-9]*\) http .*/\1/p' "$RC_TMP/ns-main.out")
  [ -n "\$port" ] && break; sleep 0.1
done
[ -n "\$port" ] || exit 91
"$cli" --coordinator 127.0.0.1:\$port stats >/dev/null || exit 92
"$cli" --coordinator 10.231.9.1:\$port stats 2>"$RC_TMP/ns-cli.err" && exit 93
grep -q "serves only loopback clients" "$RC_TMP/ns-cli.err" || exit 94
if ip -6 addr show dev lo | grep -q '::1'; then
  "$cli" --coordinator "[::1]:\$port" stats >/dev/null || exit 97   # IPv6 loopback is loopback too
fi
timeout 20 "$worker" --join 10.231.9.1:\$port --device-id remote --data-dir "$RC_TMP/remote" 2>"$RC_TMP/ns-w.err" && exit 95
grep -q "accepts only workers on this machine" "$RC_TMP/ns-w.err" || exit 96
exit 0
NS
  check "without tokens: loopback served, a non-loopback client and worker refused" unshare --net bash "$RC_TMP/netns.sh"
else
  echo "SKIP: the loopback-only check needs root for a network namespace"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
