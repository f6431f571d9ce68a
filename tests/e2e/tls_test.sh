#!/usr/bin/env bash
# TLS and mTLS end to end on the real binaries, with certificates from
# scripts/dev-certs.sh: a task through a TLS coordinator, and the refusals (plaintext
# client, unknown CA, no client certificate under mTLS).
# usage: tls_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
main="$build/coordinator/retire-cluster-main"
worker="$build/worker/retire-cluster-worker"
cli="$build/client/retire-cluster"
certs="$RC_TMP/certs"
other="$RC_TMP/other-certs"
check "dev-certs.sh makes a CA and certificates" "$here/../../scripts/dev-certs.sh" "$certs"
"$here/../../scripts/dev-certs.sh" "$other" >/dev/null

# start_main FLAGS...: a coordinator on a free port; sets addr and main_pid.
start_main() {
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/data-$RANDOM" --log-level warn "$@" \
    >"$RC_TMP/main.out" 2>"$RC_TMP/main.log" &
  main_pid=$!
  RC_PIDS+=("$main_pid")
  addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's/.* listening on \(127\.0\.0\.1:[0-9]*\) http .*$/\1/p' "$RC_TMP/main.out")
    http=$(sed -n 's/.* http \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$RC_TMP/main.out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  cat "$RC_TMP/main.log" >&2
  return 1
}
# online DEVICE CLI_FLAGS...: waits (10 s at most) until the worker is listed online.
online() {
  local device=$1; shift
  for _ in $(seq 100); do
    "$cli" --coordinator "$addr" "$@" workers 2>/dev/null | grep -q "^$device  *online" && return 0
    sleep 0.1
  done
  return 1
}
# run_echo CLI_FLAGS...: one echo task through the cluster, waited for.
run_echo() {
  local out
  out=$("$cli" --coordinator "$addr" "$@" submit echo --payload '{"tls":true}' --wait --json) &&
    jqe '.status == "success" and .result.tls == true' <<<"$out"
}

# https URL [CA [CERT KEY]]: GET over HTTPS with Debian's python (no curl here); prints the body.
https() {
  /usr/bin/python3 - "$@" <<'PY'
import ssl, sys, urllib.request
url, ca = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
ctx = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 4:
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
print(urllib.request.urlopen(url, context=ctx, timeout=5).read().decode())
PY
}

# --- TLS, server certificate only ---
check "coordinator starts with TLS" start_main --tls-cert "$certs/server.pem" --tls-key "$certs/server.key"
tls=(--tls-ca "$certs/ca.pem")
"$worker" --join "$addr" --device-id tls-w --data-dir "$RC_TMP/tls-w" "${tls[@]}" 2>"$RC_TMP/tls-w.log" &
RC_PIDS+=($!)
check "a worker joins over TLS" online tls-w "${tls[@]}"
check "a task runs over TLS" run_echo "${tls[@]}"
expect "a plaintext client is refused" 4 "cannot reach coordinator" "$cli" --coordinator "$addr" stats
expect "the HTTP bridge serves HTTPS" 0 '"status":' https "https://$http/healthz" "$certs/ca.pem"
expect "the HTTP bridge refuses another CA" 1 "CERTIFICATE_VERIFY_FAILED" https "https://$http/healthz" "$other/ca.pem"
expect "a client trusting another CA is refused" 4 "cannot reach coordinator" \
  "$cli" --coordinator "$addr" --tls-ca "$other/ca.pem" stats
expect_no_hint() {  # a refusal a client certificate would not cure carries no hint about one
  local out
  out=$("$@" 2>&1)
  [ $? -eq 4 ] && grep -q "cannot reach coordinator" <<<"$out" && ! grep -q "may require" <<<"$out"
}
check "no certificate hint when the client distrusts the server" \
  expect_no_hint "$cli" --coordinator "$addr" --tls-ca "$other/ca.pem" stats
expect "an unreadable CA file is named" 2 "tls_ca_file: cannot read /nonexistent.pem" \
  "$cli" --coordinator "$addr" --tls-ca /nonexistent.pem stats
rc_stop "$main_pid"

# --- mTLS: client certificates required ---
check "coordinator starts with mTLS" start_main --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
  --tls-client-ca "$certs/ca.pem"
mtls=(--tls-ca "$certs/ca.pem" --tls-cert "$certs/client.pem" --tls-key "$certs/client.key")
"$worker" --join "$addr" --device-id mtls-w --data-dir "$RC_TMP/mtls-w" "${mtls[@]}" 2>"$RC_TMP/mtls-w.log" &
RC_PIDS+=($!)
check "a worker with a client certificate joins" online mtls-w "${mtls[@]}"
check "a task runs over mTLS" run_echo "${mtls[@]}"
expect "retire-cluster-status over mTLS" 0 "mtls-w" "$build/client/retire-cluster-status" "$addr" --devices "${mtls[@]}"
expect "HTTPS with a client certificate" 0 '"status":' \
  https "https://$http/healthz" "$certs/ca.pem" "$certs/client.pem" "$certs/client.key"
expect "HTTPS without a client certificate is refused" 1 "Error|error" https "https://$http/healthz" "$certs/ca.pem"
expect "a client without a certificate is refused" 4 "cannot reach coordinator" \
  "$cli" --coordinator "$addr" --tls-ca "$certs/ca.pem" stats
# gRPC itself says only "Socket closed": the error names the missing certificate.
expect "refused without a certificate: the CLI says one may be required" 4 \
  "the coordinator may require one: --tls-cert and --tls-key" "$cli" --coordinator "$addr" --tls-ca "$certs/ca.pem" stats
expect "refused without a certificate: retire-cluster-status says so too" 4 "the coordinator may require one" \
  "$build/client/retire-cluster-status" "$addr" --tls-ca "$certs/ca.pem"
expect "a client with another CA's certificate is refused" 4 "cannot reach coordinator" \
  "$cli" --coordinator "$addr" --tls-ca "$certs/ca.pem" --tls-cert "$other/client.pem" --tls-key "$other/client.key" stats
"$worker" --join "$addr" --device-id nocert-w --data-dir "$RC_TMP/nocert-w" --tls-ca "$certs/ca.pem" \
  2>"$RC_TMP/nocert-w.log" &
RC_PIDS+=($!)
sleep 1
check "a worker without a certificate never joins" bash -c "! '$cli' --coordinator '$addr' ${mtls[*]} workers | grep -q nocert-w"
rc_stop "$main_pid"

# --- config errors ---
expect "main: a key without its certificate" 2 "tls_cert_file: set together with tls_key_file" \
  "$main" --tls-key "$certs/server.key"
expect "main: client CA without TLS" 2 "tls_client_ca_file: needs tls_cert_file" "$main" --tls-client-ca "$certs/ca.pem"
expect "main: unreadable certificate is named" 1 "tls_cert_file: cannot read /nonexistent.pem" \
  "$main" --host 127.0.0.1 --port 0 --http-port 0 --data-dir "$RC_TMP/bad-cert" --tls-cert /nonexistent.pem \
  --tls-key "$certs/server.key"
expect "main: plaintext on a public address warns" 0 "PLAINTEXT on 0.0.0.0" \
  timeout --preserve-status -s TERM 1 "$main" --host 0.0.0.0 --port 0 --http-port 0 --data-dir "$RC_TMP/warn"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
