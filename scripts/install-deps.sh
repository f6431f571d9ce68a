#!/usr/bin/env bash
# Installs exactly what retire-cluster's build and tests need on Debian 12.
# Idempotent: a no-op (no apt call at all) when every package is already present.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libsqlite3-dev libcurl4-openssl-dev
  libcpp-httplib-dev
  libjemalloc-dev        # the daemons' allocator: about 30% less CPU per task than glibc's
  catch2 libbenchmark-dev
  python3 python3-venv   # python_eval, python_script
  python3-grpcio python3-protobuf python3-pytest  # the Python SDK (python/) and its pytest suite
  python3-pip            # pip install ./python (tests): setuptools and wheel, as the install test ran with
  jq nftables iproute2   # tests: JSON checks; the network-partition fault test
  openssl libssl-dev     # scripts/dev-certs.sh; token digests and Ed25519 result signatures
  bubblewrap             # the worker's bwrap containment tier
  clang libclang-rt-14-dev  # libFuzzer targets (fuzz/) and the -Werror=thread-safety build
  libboost-dev           # Boost.Asio + Boost.Beast (header-only): the HTTP bridge's event-driven server
  chromium               # browser tasks (about 300 MB installed); a worker without it does not offer them
  xvfb                   # browser_record's display in tests (Xvfb); a desktop worker uses its own display
  python3-websocket      # tests: a python_script drives the browser over CDP with it
)
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi  # js tasks: the engine host runs on node (>= 18)
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi  # npm ci of worker/js; only when missing: Debian's npm conflicts with a non-Debian nodejs

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# promtool for the /metrics lint test (scripts/test.sh sets RC_TOOLS_DIR): taken out of
# Debian's prometheus package without installing it, so no Prometheus daemon is set up or
# started on the machine. Without it that test prints SKIP.
fetch_promtool() {
  local dir=$1
  if command -v promtool >/dev/null 2>&1 || [ -x "$dir/promtool" ]; then return 0; fi
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb x) &&
     [ -x "$tmp/x/usr/bin/promtool" ]; then
    mkdir -p "$dir" && cp "$tmp/x/usr/bin/promtool" "$dir/promtool"
    echo "install-deps: promtool from Debian's prometheus package in $dir"
  else
    echo "install-deps: could not fetch promtool (apt-get download prometheus); its test will SKIP"
  fi
  rm -rf "$tmp"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  if [ -n "${RC_TOOLS_DIR:-}" ]; then fetch_promtool "$RC_TOOLS_DIR"; fi
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ -n "${RC_TOOLS_DIR:-}" ]; then fetch_promtool "$RC_TOOLS_DIR"; fi
