#!/usr/bin/env bash
# archive.sh - Lumen vs Orthanc archive benchmark, both servers in ONE run, same clients.
#
#   bash bench/archive.sh                 # REPS=3, writes bench/results/archive-<date>.md
#
# 1. ensures the peer tools (Orthanc, DCMTK, Python venv) exist, else runs
#    ../shared/peers/orthanc-bench.sh --install
# 2. builds lumen in release (CARGO_TARGET_DIR, default /work/target-bench)
# 3. runs the peer script with no measurement modes (MODES=" ") so that it writes its
#    orthanc.json, gen_series.py and bench.py into $WORK/peer and generates (or reuses) the
#    300x512x512 CT series there; bench.py is then adapted (bench/adapt_bench.py)
# 4. inside a private network namespace (unshare --net, only lo): Orthanc (TCP_NODELAY=1)
#    measured by bench.py, then Lumen (fresh data dir, own ports) by the same bench.py;
#    then the DIMSE section again with Debian's defaults (TCP_NODELAY unset: Nagle on in
#    Orthanc and in the DCMTK clients), for Orthanc and for Lumen (which sets TCP_NODELAY on
#    its own sockets whatever the environment says)
# 5. prints the comparison table and writes it to bench/results/archive-<date>.md
#
# Env: REPS=3 LAT_N=50 WORK=/tmp/lumen-archive-bench VENV=/tmp/peerenv
#      CARGO_TARGET_DIR=/work/target-bench SKIP_BUILD=0 LUMEN_BIN=$CARGO_TARGET_DIR/release/lumen
#      PEERS=<repo>/../shared/peers STAMP=<date>
#      ORTHANC_HTTP=18042 ORTHANC_DICOM=14242 LUMEN_BENCH_HTTP=18043 LUMEN_BENCH_DICOM=14244
#      ORDER="orthanc lumen orthanc_nagle lumen_nagle" SKIP="" (bench.py --skip list, e.g.
#      dimse-retrieve,rendered)  NAGLE_REPS=$REPS (repetitions of the Nagle-on runs)
#      RETRIEVE_TMP=/dev/shm (TMPDIR of bench.py: where getscu/movescu write the retrieved
#      files; on disk, writeback of the previous repetition's 158 MB throttles the clients)
#      MOVE_PORT=14243 (bench.py --move-port: movescu's own store SCP, AE BENCHSCP; Orthanc's
#      orthanc.json and Lumen's --peer BENCHSCP=127.0.0.1:$MOVE_PORT point there)
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PEERS=${PEERS:-$(readlink -f "$REPO/../shared/peers")}
WORK=${WORK:-/tmp/lumen-archive-bench}
PEER_WORK=$WORK/peer
VENV=${VENV:-/tmp/peerenv}
REPS=${REPS:-3}
LAT_N=${LAT_N:-50}
ORDER=${ORDER:-"orthanc lumen orthanc_nagle lumen_nagle"}
NAGLE_REPS=${NAGLE_REPS:-$REPS}
SKIP=${SKIP-}
MOVE_PORT=${MOVE_PORT:-14243}
ORTHANC_HTTP=${ORTHANC_HTTP:-18042}
ORTHANC_DICOM=${ORTHANC_DICOM:-14242}
LUMEN_BENCH_HTTP=${LUMEN_BENCH_HTTP:-18043}
LUMEN_BENCH_DICOM=${LUMEN_BENCH_DICOM:-14244}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
LUMEN_BIN=${LUMEN_BIN:-$CARGO_TARGET_DIR/release/lumen}
PY=$VENV/bin/python
STAMP=${STAMP:-$(date +%Y-%m-%d-%H%M)}
RESULTS=$HERE/results

# ------------------------------------------------------------------ outside the namespace
if [[ -z ${_ARCHIVE_IN_NETNS:-} ]]; then
  # 1. peer tools
  need_install=0
  for t in Orthanc storescu getscu movescu findscu echoscu dcmdump dciodvfy curl unshare ip; do
    command -v "$t" >/dev/null || need_install=1
  done
  if [[ ! -x $PY ]] || ! "$PY" -c "import pydicom, pynetdicom, dicomweb_client, highdicom, requests, numpy" 2>/dev/null; then
    need_install=1
  fi
  if [[ $need_install == 1 ]]; then
    echo "== installing peer tools (orthanc-bench.sh --install)"
    MODES=" " WORK="$PEER_WORK" VENV="$VENV" bash "$PEERS/orthanc-bench.sh" --install
  fi

  # 2. lumen release build
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "== building lumen (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release -p lumen)
  fi
  [[ -x $LUMEN_BIN ]] || { echo "no lumen binary at $LUMEN_BIN" >&2; exit 1; }

  # 3. peer work files + series (MODES=" ": the peer script writes its files, generates or
  #    reuses the series, runs dciodvfy, and measures nothing)
  echo "== peer files + series in $PEER_WORK"
  mkdir -p "$PEER_WORK" "$RESULTS" "$WORK"
  # (retried: under load its `Orthanc --version | head -1` can die of SIGPIPE under pipefail)
  for try in 1 2 3; do
    if MODES=" " WORK="$PEER_WORK" VENV="$VENV" NSLICES=300 SIZE=512 \
        HTTP_PORT="$ORTHANC_HTTP" DICOM_PORT="$ORTHANC_DICOM" MOVE_PORT="$MOVE_PORT" bash "$PEERS/orthanc-bench.sh" > "$WORK/peer-setup.log" 2>&1; then
      sed 's/^/  /' "$WORK/peer-setup.log"; break
    fi
    echo "  peer script failed (try $try, rc see $WORK/peer-setup.log)"; [[ $try == 3 ]] && { cat "$WORK/peer-setup.log"; exit 1; }
  done
  [[ $(ls "$PEER_WORK/series" | wc -l) == 300 ]] || { echo "series not generated" >&2; exit 1; }
  "$PY" "$HERE/adapt_bench.py" "$PEER_WORK/bench.py" "$WORK/bench_adapted.py"

  {
    echo "date: $(date -Is)  kernel: $(uname -r)  cpus: $(nproc)  mem: $(free -g | awk '/Mem:/{print $2}') GiB"
    echo "orthanc: $(Orthanc --version 2>/dev/null | sed -n 1p); $(dpkg-query -W -f='${Package} ${Version}  ' orthanc orthanc-dicomweb dcmtk 2>/dev/null)"
    echo "lumen: $(git -C "$REPO" rev-parse --short HEAD) + $(git -C "$REPO" status --porcelain | wc -l) uncommitted paths in the tree; binary $LUMEN_BIN ($(stat -c %y "$LUMEN_BIN" | cut -d. -f1))"
    echo "clients: $("$VENV/bin/pip" list 2>/dev/null | grep -iE '^(pydicom|pynetdicom|dicomweb-client|requests) ' | awk '{printf "%s %s  ", $1, $2}')"
    echo "reps=$REPS lat_n=$LAT_N order: $ORDER; retrieved files in ${RETRIEVE_TMP:-/dev/shm}"
  } > "$WORK/runinfo.txt"
  export BENCH_LUMEN_COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"

  # 4. everything else in a private network namespace
  exec unshare --net env _ARCHIVE_IN_NETNS=1 STAMP="$STAMP" bash "$HERE/archive.sh" "$@"
fi

# ------------------------------------------------------------------ inside the namespace
ip link set lo up
mkdir -p "$WORK/results" "$WORK/lumen"
rm -f "$WORK"/results/{orthanc,lumen,orthanc_nagle,lumen_nagle}.json
export PYTHONPATH=$HERE${PYTHONPATH:+:$PYTHONPATH}
export TCP_NODELAY=1          # DCMTK tools (and Orthanc) read it; bench.py patches pynetdicom
RETRIEVE_TMP=${RETRIEVE_TMP:-/dev/shm}
[[ -d $RETRIEVE_TMP ]] && export TMPDIR=$RETRIEVE_TMP

ORTHANC_PID=
stop_orthanc() {
  if [[ -n $ORTHANC_PID ]] && kill -0 "$ORTHANC_PID" 2>/dev/null; then
    kill "$ORTHANC_PID"; wait "$ORTHANC_PID" 2>/dev/null || true
  fi
  ORTHANC_PID=
}
trap stop_orthanc EXIT INT TERM

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

start_orthanc() {   # $@: env arguments for Orthanc (env execs it, so $! is Orthanc's PID)
  rm -rf "$PEER_WORK/db"; mkdir -p "$PEER_WORK/db" "$PEER_WORK/logs"
  env "$@" Orthanc "$PEER_WORK/orthanc.json" >"$PEER_WORK/logs/orthanc-archive.log" 2>&1 &
  ORTHANC_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$ORTHANC_HTTP/system" >/dev/null && break
    kill -0 "$ORTHANC_PID" 2>/dev/null || { echo "Orthanc died; see $PEER_WORK/logs/orthanc-archive.log" >&2; exit 1; }
    sleep 0.2
  done
}

run_orthanc() {
  start_orthanc
  echo "== Orthanc (pid $ORTHANC_PID, TCP_NODELAY=1)  loadavg $(loadavg)"
  BENCH_SERVER=orthanc "$PY" "$WORK/bench_adapted.py" --series "$PEER_WORK/series" --pid "$ORTHANC_PID" \
    --reps "$REPS" --lat-n "$LAT_N" --http-port "$ORTHANC_HTTP" --dicom-port "$ORTHANC_DICOM" --aec ORTHANC \
    --move-port "$MOVE_PORT" --skip "$SKIP" --sections dimse,dicomweb --label orthanc --out "$WORK/results/orthanc.json"
  stop_orthanc
  echo "   loadavg after Orthanc: $(loadavg)"
}

run_lumen() {
  rm -rf "$WORK/lumen"; mkdir -p "$WORK/lumen"
  echo "== Lumen ($LUMEN_BIN, ports $LUMEN_BENCH_HTTP/$LUMEN_BENCH_DICOM, fresh data dir per wipe)  loadavg $(loadavg)"
  BENCH_SERVER=lumen BENCH_LUMEN_BIN="$LUMEN_BIN" BENCH_LUMEN_WORK="$WORK/lumen" \
    "$PY" "$WORK/bench_adapted.py" --series "$PEER_WORK/series" \
    --reps "$REPS" --lat-n "$LAT_N" --http-port "$LUMEN_BENCH_HTTP" --dicom-port "$LUMEN_BENCH_DICOM" --aec LUMEN \
    --move-port "$MOVE_PORT" --skip "$SKIP" --sections dimse,dicomweb --label lumen --out "$WORK/results/lumen.json"
  echo "   loadavg after Lumen: $(loadavg)"
}

# Debian's defaults: TCP_NODELAY unset for Orthanc and the DCMTK clients (Nagle on), DIMSE
# section only, pynetdicom skipped (bench.py only patches it for TCP_NODELAY=1).
run_orthanc_nagle() {
  start_orthanc -u TCP_NODELAY
  echo "== Orthanc, Debian defaults (pid $ORTHANC_PID, TCP_NODELAY unset)  loadavg $(loadavg)"
  env -u TCP_NODELAY BENCH_SERVER=orthanc "$PY" "$WORK/bench_adapted.py" --series "$PEER_WORK/series" --pid "$ORTHANC_PID" \
    --reps "$NAGLE_REPS" --lat-n "$LAT_N" --http-port "$ORTHANC_HTTP" --dicom-port "$ORTHANC_DICOM" --aec ORTHANC \
    --move-port "$MOVE_PORT" --skip "pynetdicom${SKIP:+,$SKIP}" --sections dimse --label orthanc_nagle \
    --out "$WORK/results/orthanc_nagle.json"
  stop_orthanc
  echo "   loadavg after Orthanc (Nagle on): $(loadavg)"
}

run_lumen_nagle() {
  rm -rf "$WORK/lumen"; mkdir -p "$WORK/lumen"
  echo "== Lumen, DCMTK clients with Debian defaults (TCP_NODELAY unset)  loadavg $(loadavg)"
  env -u TCP_NODELAY BENCH_SERVER=lumen BENCH_LUMEN_BIN="$LUMEN_BIN" BENCH_LUMEN_WORK="$WORK/lumen" \
    "$PY" "$WORK/bench_adapted.py" --series "$PEER_WORK/series" \
    --reps "$NAGLE_REPS" --lat-n "$LAT_N" --http-port "$LUMEN_BENCH_HTTP" --dicom-port "$LUMEN_BENCH_DICOM" --aec LUMEN \
    --move-port "$MOVE_PORT" --skip "pynetdicom${SKIP:+,$SKIP}" --sections dimse --label lumen_nagle \
    --out "$WORK/results/lumen_nagle.json"
  echo "   loadavg after Lumen (Nagle on clients): $(loadavg)"
}

for s in $ORDER; do "run_$s"; done

# 5. table
mkdir -p "$RESULTS"
OUT=$RESULTS/archive-$STAMP.md
"$PY" "$HERE/report.py" "$WORK/results/orthanc.json" "$WORK/results/lumen.json" "$OUT" "$WORK/runinfo.txt" \
  "$WORK/results/orthanc_nagle.json" "$WORK/results/lumen_nagle.json"
for r in orthanc lumen orthanc_nagle lumen_nagle; do
  [[ -f $WORK/results/$r.json ]] && cp "$WORK/results/$r.json" "$RESULTS/archive-$STAMP-$r.json"
done
echo "table written to $OUT"
