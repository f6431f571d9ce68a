#!/usr/bin/env bash
# Browser automation (issue 17): what a persistent browser costs. Starts its own coordinator
# and a worker --allow browser,python_script on 127.0.0.1 (ephemeral ports; scripts/lib.sh
# stops everything on exit), with the system Chromium, headless. Each figure is the median of
# RUNS (3) runs, with [min-max]; every time is a task's round trip as a client sees it
# (`retire-cluster submit ... --wait`, the CLI's own start included: ECHO gives that floor).
#   cold start:  `browser start` on a profile never used (a new user-data dir): Chromium
#                starts, writes DevToolsActivePort, the task returns the CDP URL.
#   warm start:  `browser start` on a profile whose browser runs: nothing starts.
#   warm script: a python_script with a `browser` block on that running profile: the lease,
#                RC_CDP_URL, python3 starting, one GET /json/version through CDP (through the
#                relay under bwrap: CONTAINMENT=bwrap).
#   echo:        an echo task's round trip, the floor of the three above.
#   idle memory: memory_mb of `browser status` (RSS of the browser's whole process group,
#                one about:blank tab) after IDLE (5) seconds of idleness.
# usage: bench/browser_bench.sh [BUILD_DIR]
# env: RUNS (3), IDLE (5 s), CONTAINMENT (process | bwrap; default process)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
source "$root/scripts/lib.sh"
RUNS=${RUNS:-3} IDLE=${IDLE:-5} CONTAINMENT=${CONTAINMENT:-process}
clibin="$build/client/retire-cluster"
cli() { timeout 120 "$clibin" --coordinator "$RC_ADDR" "$@"; }
die() { echo "browser_bench: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# stats: numbers on stdin -> "median [min-max]"
stats() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else printf "%s [%s-%s]\n", v[int((NR + 1) / 2)], v[1], v[NR]}'; }
command -v chromium >/dev/null || die "no chromium on PATH (scripts/install-deps.sh installs it)"

printf 'log_level: warn\n' >"$RC_TMP/main.yaml"
printf 'log_level: warn\n' >"$RC_TMP/worker.yaml"
rc_start_main "$build" --config "$RC_TMP/main.yaml" || die "no coordinator"
rc_start_worker "$build" b1 --allow browser,python_script --slots 2 --containment "$CONTAINMENT" \
  --config "$RC_TMP/worker.yaml" || die "no worker"
echo "# browser bench at $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(git -C "$root" rev-parse --short HEAD 2>/dev/null)," \
  "$(chromium --version 2>/dev/null | tail -1), containment $CONTAINMENT, load $(cut -d' ' -f1-3 /proc/loadavg)"

# timed TYPE PAYLOAD CHECK: one task's round trip in ms on stdout; fails unless its JSON
# passes the jq filter CHECK.
timed() {
  local t0 out
  t0=$(now_ms)
  out=$(cli submit "$1" --payload "$2" --timeout 60 --max-retries 0 --wait --json) || { echo "$1: $out" >&2; return 1; }
  echo $(($(now_ms) - t0))
  jq -e "$3" >/dev/null <<<"$out" || { echo "$1: unexpected result: $out" >&2; return 1; }
}
script=$(jq -cn '{code: "import json, os, urllib.request\nv = json.load(urllib.request.urlopen(os.environ[\"RC_CDP_URL\"] + \"/json/version\", timeout=10))\nprint(v[\"Browser\"])", browser: {profile: "warm"}}')

cold=() warm=() warm_script=() echo_rt=() idle=()
timed browser '{"operation": "start", "profile": "warm"}' '.status == "success"' >/dev/null || die "warm-up start"
timed python_script "$script" '.status == "success"' >/dev/null || die "warm-up script"
for i in $(seq "$RUNS"); do
  cold+=("$(timed browser "{\"operation\": \"start\", \"profile\": \"cold$i\"}" \
    '.status == "success" and .result.running and .result.pid > 0')") || die "cold start $i"
  warm+=("$(timed browser '{"operation": "start", "profile": "warm"}' '.status == "success" and .result.running')") \
    || die "warm start $i"
  warm_script+=("$(timed python_script "$script" '.status == "success" and (.stdout | startswith("Chrome/"))')") \
    || die "warm script $i"
  echo_rt+=("$(timed echo '{"i": 1}' '.status == "success"')") || die "echo $i"
  sleep "$IDLE"
  out=$(cli submit browser --payload "{\"operation\": \"status\", \"profile\": \"cold$i\"}" --wait --json --timeout 60)
  idle+=("$(jq -r '.result.memory_mb' <<<"$out")")
  cli submit browser --payload "{\"operation\": \"stop\", \"profile\": \"cold$i\"}" --wait --json --timeout 60 >/dev/null
done
printf '| measure | median [min-max] |\n| --- | --- |\n'
printf '| cold start: browser start, new profile (ms) | %s |\n' "$(printf '%s\n' "${cold[@]}" | stats)"
printf '| warm start: browser start, running profile (ms) | %s |\n' "$(printf '%s\n' "${warm[@]}" | stats)"
printf '| warm script: python_script + browser block, GET /json/version (ms) | %s |\n' \
  "$(printf '%s\n' "${warm_script[@]}" | stats)"
printf '| echo task round trip, the floor (ms) | %s |\n' "$(printf '%s\n' "${echo_rt[@]}" | stats)"
printf '| idle browser memory after %s s (memory_mb) | %s |\n' "$IDLE" "$(printf '%s\n' "${idle[@]}" | stats)"
