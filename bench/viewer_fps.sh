#!/usr/bin/env bash
# Scroll frame rate of the web app's CT viewer on a 300-slice 512x512 series, in headless
# Chromium (software rendering, --disable-gpu), against `lumen serve`. What is measured runs in
# the browser (the server only sets the load time, reported apart), so the test profile is used:
# lumen-ai and all dependencies are optimised there too (see the workspace Cargo.toml).
#  1. lumen-ai's bench example writes the 512x512x300 chest phantom (seed 42) as DICOM;
#  2. the ignored test `viewer_scroll_fps` (crates/lumen/tests/webapp.rs) imports it, opens the
#     study in the viewer, waits until all 300 slices are in memory, then in the page:
#     - runs an idle requestAnimationFrame loop for 180 frames (the display's own frame rate,
#       the peer every viewer is bounded by);
#     - dispatches one wheel event per animation frame on the viewport, from slice 1 to 300 and
#       back, while the viewer logs every frame it draws (rAF time stamp, slice, end of drawing);
#  3. prints frames per second while scrolling, ms per frame (median, p95, max), the drawing
#     time per frame, and the ratio of scrolling fps to the idle rAF rate (1.0 = no frame lost).
# Usage, from the repository root: bench/viewer_fps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-ui}"
scripts/deps.sh test >/dev/null
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build -q -p lumen-ai --example bench
"$CARGO_TARGET_DIR/debug/examples/bench" write-dicom "$tmp/series"
LUMEN_FPS_SERIES="$tmp/series" cargo test -q -p lumen --test webapp \
  -- --ignored --exact viewer_scroll_fps --nocapture 2>&1 | tee "$tmp/out.txt" | grep -v '^$' || true
line="$(grep '^VIEWER_FPS ' "$tmp/out.txt" | head -n 1 | cut -d' ' -f2-)"
[[ -n $line ]] || { echo "no result" >&2; exit 1; }
python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); s = r["scroll"]
print(f"series: {s['slices']} slices, canvas {s['canvas'][0]}x{s['canvas'][1]} px, loaded in {r['load_seconds']:.1f} s")
print(f"idle rAF:   {s['idle']['fps']:.1f} fps (median {s['idle']['median_ms']:.1f} ms)")
sc = s["scroll"]
print(f"scrolling:  {sc['fps']:.1f} fps over {sc['frames']} frames; ms/frame median {sc['median_ms']:.1f}, p95 {sc['p95_ms']:.1f}, max {sc['max_ms']:.1f}")
print(f"drawing:    median {s['render_ms_median']:.2f} ms, p95 {s['render_ms_p95']:.2f} ms per frame")
print(f"scroll/idle ratio: {s['ratio_fps_to_idle']:.2f}; slices drawn {s['slices_shown']}/{s['slices']}")
PY
