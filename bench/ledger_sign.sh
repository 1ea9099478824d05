#!/usr/bin/env bash
# Report signing latency over HTTP, as Lumen signs (with its ledger entry): a release
# `lumen serve` on a fresh data directory with CT_small.dcm, one POST
# /api/studies/{uid}/report/sign, then N POST .../report/addenda (the same signing path:
# PDF and SR rendered and stored, then Store::commit_signature with the entry).
# Prints every latency and the median. The ledger's share of it is measured apart by
# crates/store/examples/ledger_sign.rs (see bench/README.md, "Ledger").
#
#   cargo build --release -p lumen && bash bench/ledger_sign.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30}
LUMEN=${LUMEN:-${CARGO_TARGET_DIR:-target}/release/lumen}
CT=../shared/data/dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm
STUDY=1.3.6.1.4.1.5962.1.2.1.20040119072730.12322
PORT=${PORT:-18042}
DATA=$(mktemp -d "${BENCH_DIR:-/var/tmp}/lumen-ledger-sign.XXXXXX")
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT

"$LUMEN" import --data "$DATA" "$CT" >/dev/null 2>&1
printf 'bench-password-1' | "$LUMEN" user add --data "$DATA" --username bench \
  --role radiologist --display-name "Dr Bench" --password-stdin >/dev/null
LUMEN_LOG=warn "$LUMEN" serve --data "$DATA" --http "127.0.0.1:$PORT" \
  --dicom "127.0.0.1:$((PORT + 1))" --aet LUMEN >/dev/null 2>"$DATA.log" &
PID=$!
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.05
done
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/api/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"bench-password-1"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

post() { # path body -> seconds
  curl -sf -o /dev/null -w '%{time_total}\n' -X POST "http://127.0.0.1:$PORT$1" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2"
}
echo "sign: $(post "/api/studies/$STUDY/report/sign" '{"lang":"en"}') s"
for i in $(seq "$N"); do
  post "/api/studies/$STUDY/report/addenda" "{\"text\":\"Addendum $i.\"}"
done | sort -n | awk '{ a[NR] = $1 } END {
  printf "addenda: %d, median %.1f ms, min %.1f ms, max %.1f ms\n",
    NR, a[int((NR + 1) / 2)] * 1000, a[1] * 1000, a[NR] * 1000 }'
sleep 2
entries=$(curl -sf "http://127.0.0.1:$PORT/api/ledger/status" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])' || echo "?")
echo "ledger entries published: $entries (of $((N + 1)))"
