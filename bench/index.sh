#!/usr/bin/env bash
# index.sh - the index at scale: `lumen import` rate as the archive grows, and QIDO-RS,
# worklist and C-FIND p50/p99 at 10,000 and 1,000,000 instances, with Orthanc at 100,000
# instances in the same run for comparison.
#
#   bash bench/index.sh              # ~1 h on 2 cores; writes bench/results/index-<date>.md
#   BIG_STUDIES=10000 bash bench/index.sh     # a quicker run (100,000 instances)
#
# 1. builds lumen and the generator (crates/store/examples/tiny_archive.rs) in release;
# 2. generates tiny CT studies (10 instances of 8x8 pixels, one patient each) in steps of
#    STEP studies, and imports each step with `lumen import` into one growing archive,
#    printing the rate of each step (the archive's size before it in the first column);
#    a separate small archive of SMALL_STUDIES studies is the reference;
# 3. inside a private network namespace (only lo): serves each archive with `lumen serve`
#    (AI off) and runs bench/index_bench.py (N queries each, random studies, every answer's
#    count checked); then Orthanc (fresh storage, the first ORTHANC_STUDIES studies sent
#    with storescu) and the same client;
# 4. prints and writes the table: p50/p99 per query, the ratio 1M/10k, Orthanc at 100k.
#
# Env: WORK=/work/index-bench (about 12 GB at 1M) BIG_STUDIES=100000 SMALL_STUDIES=1000
#      ORTHANC_STUDIES=10000 PER_STUDY=10 STEP=10000 N=200 SKIP_BUILD=0 SKIP_GEN=0
#      SKIP_ORTHANC=0 REUSE_ORTHANC=0 (keep Orthanc's loaded storage) CARGO_TARGET_DIR=/work/target-bench PY=<repo>/.venv/bin/python
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${WORK:-/work/index-bench}
BIG_STUDIES=${BIG_STUDIES:-100000}
SMALL_STUDIES=${SMALL_STUDIES:-1000}
ORTHANC_STUDIES=${ORTHANC_STUDIES:-10000}
PER_STUDY=${PER_STUDY:-10}
STEP=${STEP:-10000}
N=${N:-200}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
LUMEN=$CARGO_TARGET_DIR/release/lumen
GEN=$CARGO_TARGET_DIR/release/examples/tiny_archive
PY=${PY:-$REPO/.venv/bin/python}
STAMP=${STAMP:-$(date +%Y-%m-%d-%H%M)}
RESULTS=$HERE/results
HTTP=18053 DICOM=14254 OHTTP=18052 ODICOM=14252

if [[ -z ${_INDEX_IN_NETNS:-} ]]; then
  [[ -x $PY ]] || { echo "no Python venv at $PY (run scripts/deps.sh test)" >&2; exit 1; }
  if [[ ${SKIP_ORTHANC:-0} != 1 ]] && { ! command -v Orthanc >/dev/null || [[ ! -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]]; }; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends orthanc orthanc-dicomweb dcmtk
  fi
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$REPO" && cargo build --release -p lumen && cargo build --release -p lumen-store --example tiny_archive)
  fi
  mkdir -p "$WORK/gen" "$WORK/results"
  small=$WORK/gen/small
  if [[ ${SKIP_GEN:-0} != 1 ]]; then
    rm -rf "$WORK/gen" "$WORK/lumen-small" "$WORK/lumen-big"; mkdir -p "$WORK/gen"
    echo "== generating $SMALL_STUDIES + $BIG_STUDIES studies x $PER_STUDY instances"
    "$GEN" "$small" "$SMALL_STUDIES" "$PER_STUDY"
    for ((first = 0; first < BIG_STUDIES; first += STEP)); do
      n=$(( BIG_STUDIES - first < STEP ? BIG_STUDIES - first : STEP ))
      "$GEN" "$WORK/gen/big-$(printf %07d "$first")" "$n" "$PER_STUDY" "$first"
    done
    echo "== import: instances in the archive before the step | files | seconds | instances/s"
    t0=$(date +%s.%N)
    "$LUMEN" import --data "$WORK/lumen-small" "$small" >/dev/null 2>"$WORK/results/import-small.log"
    t1=$(date +%s.%N)
    echo "small 0 | $((SMALL_STUDIES * PER_STUDY)) | $(echo "$t1 - $t0" | bc)" | tee "$WORK/results/import.txt"
    for step in "$WORK"/gen/big-*; do
      before=$(( $(basename "$step" | sed 's/big-0*//;s/^$/0/') * PER_STUDY ))
      files=$(find "$step" -type f | wc -l)
      t0=$(date +%s.%N)
      "$LUMEN" import --data "$WORK/lumen-big" "$step" >/dev/null 2>>"$WORK/results/import-big.log"
      t1=$(date +%s.%N)
      secs=$(echo "$t1 - $t0" | bc)
      echo "big $before | $files | $secs | $(echo "$files / $secs" | bc)" | tee -a "$WORK/results/import.txt"
    done
  fi
  exec unshare --net env _INDEX_IN_NETNS=1 STAMP="$STAMP" bash "$HERE/index.sh" "$@"
fi

# ------------------------------------------------------------------ inside the namespace
ip link set lo up
cat > "$WORK/lumen.toml" <<EOF
[ai]
enabled = false
EOF
PID=
stop() { if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill "$PID"; wait "$PID" 2>/dev/null || true; fi; PID=; }
trap stop EXIT INT TERM
wait_http() {
  for _ in $(seq 600); do curl -sf "$1" >/dev/null && return 0; kill -0 "$PID" 2>/dev/null || return 1; sleep 0.2; done; return 1
}

run_lumen() { # $1 label, $2 data dir, $3 studies
  # Lumen refuses anonymous requests: a radiologist account for the queries (once per
  # data dir; an existing one is kept).
  echo -n bench-radiologist-pw | "$LUMEN" user add --data "$2" --username bench-rad \
    --role radiologist --password-stdin >/dev/null 2>&1 || true
  "$LUMEN" serve --config "$WORK/lumen.toml" --data "$2" --http 127.0.0.1:$HTTP --dicom 127.0.0.1:$DICOM \
    --peer BENCHSCU=127.0.0.1:1 >"$WORK/results/serve-$1.log" 2>&1 &
  PID=$!
  wait_http "http://127.0.0.1:$HTTP/health" || { echo "lumen serve did not start" >&2; exit 1; }
  TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench-rad","password":"bench-radiologist-pw"}' \
    "http://127.0.0.1:$HTTP/api/auth/login" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  LUMEN_BENCH_TOKEN=$TOKEN "$PY" "$HERE/index_bench.py" --label "$1" --base "http://127.0.0.1:$HTTP/dicom-web" --studies "$3" \
    --per-study "$PER_STUDY" --n "$N" --worklist "http://127.0.0.1:$HTTP/api/worklist?limit=50" \
    --dicom "127.0.0.1:$DICOM:LUMEN" --out "$WORK/results/$1.json"
  stop
}

run_lumen "lumen-$((SMALL_STUDIES * PER_STUDY))" "$WORK/lumen-small" "$SMALL_STUDIES"
run_lumen "lumen-$((BIG_STUDIES * PER_STUDY))" "$WORK/lumen-big" "$BIG_STUDIES"

if [[ ${SKIP_ORTHANC:-0} != 1 ]] && command -v Orthanc >/dev/null; then
  reuse=0
  [[ ${REUSE_ORTHANC:-0} == 1 && -d $WORK/orthanc/db ]] && reuse=1
  (( reuse )) || { rm -rf "$WORK/orthanc"; mkdir -p "$WORK/orthanc/db"; }
  cat > "$WORK/orthanc/orthanc.json" <<EOF
{ "Name": "ORTHANC-INDEX", "StorageDirectory": "$WORK/orthanc/db", "IndexDirectory": "$WORK/orthanc/db",
  "StorageCompression": false, "Plugins": [ "/usr/share/orthanc/plugins/libOrthancDicomWeb.so" ],
  "HttpPort": $OHTTP, "DicomPort": $ODICOM, "DicomAet": "ORTHANC", "DicomCheckCalledAet": false,
  "DicomAlwaysAllowStore": true, "DicomAlwaysAllowFind": true, "DicomCheckModalityHost": false,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "HttpThreadsCount": 50, "KeepAlive": true,
  "TcpNoDelay": true, "SaveJobs": false,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "Host": "127.0.0.1:$OHTTP", "Ssl": false } }
EOF
  TCP_NODELAY=1 Orthanc "$WORK/orthanc/orthanc.json" >"$WORK/results/orthanc.log" 2>&1 &
  PID=$!
  wait_http "http://127.0.0.1:$OHTTP/system" || { echo "Orthanc did not start" >&2; exit 1; }
  if (( ! reuse )); then
    echo "== sending $ORTHANC_STUDIES studies to Orthanc with storescu"
    t0=$(date +%s.%N)
    remaining=$ORTHANC_STUDIES
    for step in "$WORK"/gen/big-*; do
      (( remaining > 0 )) || break
      find "$step" -mindepth 1 -maxdepth 1 -type d | sort | head -n "$remaining" | while read -r d; do echo "$d"/*.dcm; done \
        | TCP_NODELAY=1 xargs -n 2000 storescu -aec ORTHANC 127.0.0.1 $ODICOM
      remaining=$(( remaining - STEP ))
    done
    t1=$(date +%s.%N)
    echo "orthanc storescu $((ORTHANC_STUDIES * PER_STUDY)) files in $(echo "$t1 - $t0" | bc) s" | tee -a "$WORK/results/import.txt"
  fi
  TCP_NODELAY=1 "$PY" "$HERE/index_bench.py" --label "orthanc-$((ORTHANC_STUDIES * PER_STUDY))" \
    --base "http://127.0.0.1:$OHTTP/dicom-web" --studies "$ORTHANC_STUDIES" --per-study "$PER_STUDY" --n "$N" \
    --dicom "127.0.0.1:$ODICOM:ORTHANC" --lenient --out "$WORK/results/orthanc-$((ORTHANC_STUDIES * PER_STUDY)).json"
  stop
fi

mkdir -p "$RESULTS"
"$PY" - "$WORK/results" "$((SMALL_STUDIES * PER_STUDY))" "$((BIG_STUDIES * PER_STUDY))" \
  "$((ORTHANC_STUDIES * PER_STUDY))" "$RESULTS/index-$STAMP.md" <<'EOF'
import json, os, sys
d, small, big, orth, out = sys.argv[1:]
load = lambda n: json.load(open(os.path.join(d, n))) if os.path.exists(os.path.join(d, n)) else None
s, b, o = load(f"lumen-{small}.json"), load(f"lumen-{big}.json"), load(f"orthanc-{orth}.json")
rows = [f"| query | Lumen {int(small):,} p50 / p99 | Lumen {int(big):,} p50 / p99 | p50 {int(big):,}/{int(small):,} | Orthanc {int(orth):,} p50 / p99 | target met (p50<=5, p99<=20, <=2x) |",
        "|---|---|---|---|---|---|"]
for q, rb in b["results"].items():
    rs = s["results"].get(q, {})
    ro = (o or {"results": {}})["results"].get(q)
    ratio = rb["p50_ms"] / rs["p50_ms"] if rs else float("nan")
    met = rb["p50_ms"] <= 5 and rb["p99_ms"] <= 20 and ratio <= 2
    fmt = lambda r: ("wrong answer" if "error" in r else f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}") if r else "-"
    rows.append(f"| {q} | {fmt(rs)} | {fmt(rb)} | {ratio:.2f}x | {fmt(ro)} | {'yes' if met else 'NO'} |")
imp = open(os.path.join(d, "import.txt")).read() if os.path.exists(os.path.join(d, "import.txt")) else ""
text = "\n".join(rows) + "\n\nImport (archive size before the step | files | seconds | instances/s):\n\n```\n" + imp + "```\n"
print(text)
open(out, "w").write(text)
EOF
