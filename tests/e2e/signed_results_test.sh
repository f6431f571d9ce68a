#!/usr/bin/env bash
# Signed results end to end on the real binaries: a task's result verifies; after the
# stored record is tampered with (coordinator stopped, its row in DATA_DIR/tasks.db
# edited, coordinator restarted) `retire-cluster verify` fails naming why; a worker
# restarted on its data dir keeps its key; a new key fails results signed by the old one;
# pins must match; a private key readable by others stops the worker.
# usage: signed_results_test.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
source "$here/../../scripts/lib.sh"
cli="$build/client/retire-cluster"
worker="$build/worker/retire-cluster-worker"

# logged_key DEVICE: the public key the worker logged at startup (64 hex digits).
logged_key() { sed -n 's/.* signs results with .*: public key \([0-9a-f]\{64\}\).*/\1/p' "$RC_TMP/$1.log" | tail -1; }
verify() { "$cli" --coordinator "$RC_ADDR" verify "$@"; }

rc_start_main "$build" --log-level warn || exit 1
rc_start_worker "$build" signer || exit 1
key=$(logged_key signer)
check "the worker logs its public key" test "${#key}" -eq 64
check "the key file is private (0600)" test "$(stat -c %a "$RC_TMP/signer/worker_key.pem")" = 600
check "the coordinator lists the worker's key" \
  test "$("$cli" --coordinator "$RC_ADDR" workers --json | jq -r '.workers[0].public_key // empty')" = "$key"

id=$("$cli" --coordinator "$RC_ADDR" submit echo --payload '{"message":"original-text"}' --wait --json | jq -r .task_id)
id2=$("$cli" --coordinator "$RC_ADDR" submit echo --payload '{"message":"second"}' --wait --json | jq -r .task_id)
expect "verify accepts the stored result" 0 "^verified: signed by signer at 20" verify "$id"
expect "verify accepts the logged key as a pin" 0 "^verified" verify "$id" --public-key "$key"
expect "verify --json says verified" 0 '"verified": true' verify "$id" --json
expect "verify refuses a pin that differs" 1 "not the pinned key" verify "$id" --public-key "$(printf 'ab%.0s' {1..32})"
expect "verify names an unknown task" 3 "error: " verify task-0000000000000000

# The same data dir: the same key. Tasks queued while it is away reach it together and
# are signed in batches (one signature per message): each verifies on its own.
rc_stop "$RC_LAST_WORKER_PID" 10
queued=()
for n in 1 2 3 4 5 6; do queued+=("$("$cli" --coordinator "$RC_ADDR" submit echo --payload "{\"n\":$n}")"); done
rc_start_worker "$build" signer || exit 1
check "a worker restarted on its data dir keeps its key" test "$(logged_key signer)" = "$key"
expect "results verify after the worker's restart" 0 "^verified" verify "$id"
largest=0
for q in "${queued[@]}"; do
  "$cli" --coordinator "$RC_ADDR" wait "$q" --timeout 20 >/dev/null
  expect "a result signed in a batch verifies alone ($q)" 0 "^verified" verify "$q"
  sig=$("$cli" --coordinator "$RC_ADDR" get "$q" --json | jq -c .signature)
  check "get --json shows its place in the batch and its proof ($q)" \
    jq -e '.batch_size >= 1 and .leaf_index < .batch_size and (.batch_root | length) == 64 and (.proof | type) == "array"' <<<"$sig" >/dev/null
  size=$(jq -r .batch_size <<<"$sig")
  [ "$size" -gt "$largest" ] 2>/dev/null && largest=$size
done
echo "largest batch among the queued results: $largest"

# Tamper with the stored result: only the result field's copy of the text (the payload
# holds it too and comes first in the record), same length so the record still parses.
rc_stop "$RC_MAIN_PID" 10
/usr/bin/python3 - "$RC_TMP/main-data/tasks.db" "$id" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(record,) = db.execute("SELECT record FROM tasks WHERE task_id = ?", (sys.argv[2],)).fetchone()
at = record.rindex(b"original-text")
record = record[:at] + b"tampered-text" + record[at + len(b"original-text"):]
db.execute("UPDATE tasks SET record = ? WHERE task_id = ?", (record, sys.argv[2]))
db.commit()
PY
rc_start_main "$build" --log-level warn || exit 1
expect "the coordinator serves the tampered result" 0 '"message": "tampered-text"' \
  "$cli" --coordinator "$RC_ADDR" get "$id" --json
expect "verify refuses the tampered result" 1 "not verified: task $id: result digest does not match the stored result" \
  verify "$id"
expect "an untouched result still verifies" 0 "^verified" verify "$id2"

# A new key under the same device id: results signed with the old one no longer match
# what the worker presents.
for _ in $(seq 100); do "$cli" --coordinator "$RC_ADDR" workers 2>/dev/null | grep -q "^signer  *online" && break; sleep 0.1; done
rc_stop "$RC_LAST_WORKER_PID" 10
mv "$RC_TMP/signer/worker_key.pem" "$RC_TMP/old_key.pem"
rc_start_worker "$build" signer || exit 1
check "a worker without its key file makes a new key" test "$(logged_key signer)" != "$key"
expect "verify refuses a result when the worker now presents another key" 1 "worker signer now presents key" verify "$id2"

# Like ssh, a private key others can read is refused.
mkdir -p "$RC_TMP/loose" && cp "$RC_TMP/old_key.pem" "$RC_TMP/loose/worker_key.pem" && chmod 644 "$RC_TMP/loose/worker_key.pem"
expect "a key file readable by others stops the worker" 2 "worker_key.pem: permissions 0644 are too open" \
  timeout 10 "$worker" --join "$RC_ADDR" --device-id loose --data-dir "$RC_TMP/loose"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
