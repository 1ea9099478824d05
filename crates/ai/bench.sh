#!/usr/bin/env bash
# Chest CT AI benchmark: LIDC-IDRI-0001 vs targets, phantom sensitivity / FP / measurement error
# by size and type, and a 512x512x300 end-to-end run with per-stage times and peak RSS.
# Usage: crates/ai/bench.sh [PHANTOM_SCANS]   (run from the repository root; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-ai}"
scans="${1:-5}"
cargo build --release -p lumen-ai --example bench
bin="$CARGO_TARGET_DIR/release/examples/bench"
echo "### LIDC-IDRI-0001 and phantoms"
"$bin" lidc phantom "$scans"
echo
echo "### 512x512x300 phantom, end to end (generation excluded from the analysis time)"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v "$bin" full 2>/tmp/lumen-bench-time.txt
  grep -E "Maximum resident set size|Elapsed \(wall clock\)" /tmp/lumen-bench-time.txt
else
  "$bin" full
fi
if command -v lumen >/dev/null 2>&1 || [ -x "$CARGO_TARGET_DIR/release/lumen" ]; then
  lumen_bin="$(command -v lumen || echo "$CARGO_TARGET_DIR/release/lumen")"
  echo
  echo "### lumen analyze on LIDC-IDRI-0001 (load to findings) with peak RSS"
  data="../shared/data/lidc-idri-0001/ct"
  if [ -d "$data" ]; then
    /usr/bin/time -v "$lumen_bin" analyze "$data" --json /tmp/lumen-lidc.json 2>/tmp/lumen-cli-time.txt | tail -n 8
    grep -E "Maximum resident set size|Elapsed \(wall clock\)" /tmp/lumen-cli-time.txt
  fi
fi
