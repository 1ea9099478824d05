#!/usr/bin/env bash
# Chest CT AI benchmark (release build):
#  1. LIDC-IDRI-0001 against the targets (LUNA16 nodule found, volume and long axis vs readers,
#     other findings with score >= 0.5);
#  2. phantom sensitivity, false positives per scan and measurement error by nodule size and type;
#  3. a 512x512x300 phantom written as DICOM, then loaded and analysed end to end (load to
#     findings) with per-stage times and peak RSS from /usr/bin/time -v.
# Usage, from the repository root: crates/ai/bench.sh [PHANTOM_SCANS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-ai}"
scans="${1:-5}"
cargo build --release -p lumen-ai --example bench
bin="$CARGO_TARGET_DIR/release/examples/bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "### 1-2. LIDC-IDRI-0001 and $scans phantoms"
"$bin" lidc phantom "$scans"

echo
echo "### 3. 512x512x300 phantom (0.7 x 0.7 x 1.0 mm), DICOM load to findings"
"$bin" write-dicom "$tmp/series" >/dev/null
/usr/bin/time -v "$bin" analyze "$tmp/series" 2>"$tmp/time.txt"
grep -E "Elapsed \(wall clock\)|User time|System time|Maximum resident set size" "$tmp/time.txt"
"$bin" full | tail -n 1
