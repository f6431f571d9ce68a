#!/usr/bin/env bash
# The coordinator's layering, checked: each folder may include only the folders listed
# for it (see coordinator/CMakeLists.txt). Prints every include against the grain and
# fails if there is one. Run by ctest ("layering: coordinator includes").
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
declare -A allowed=(
  [store]="store"
  [scheduling]="scheduling"
  [core]="core store scheduling"
  [api]="api core store scheduling"
  [grpc]="grpc api core store scheduling"
  [http]="http api core store scheduling"
)
bad=0
for layer in "${!allowed[@]}"; do
  dir="$root/coordinator/$layer"
  [[ -d "$dir" ]] || continue
  while IFS= read -r line; do
    file="${line%%:*}"
    inc=$(sed -E 's/.*#include "coordinator\/([a-z_]+)\/.*/\1/' <<<"$line")
    if [[ "$inc" == *'#include'* ]]; then  # coordinator/<file>.h: the composition root
      echo "layering: ${file#$root/} includes the server's root folder: $line"; bad=1; continue
    fi
    if [[ " ${allowed[$layer]} " != *" $inc "* ]]; then
      echo "layering: ${file#$root/} ($layer) includes coordinator/$inc/, which $layer may not use"; bad=1
    fi
  done < <(grep -rn '#include "coordinator/' "$dir" --include='*.h' --include='*.cc' || true)
done
if (( bad )); then exit 1; fi
echo "layering: ok"
