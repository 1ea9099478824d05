#!/usr/bin/env bash
# profile.sh - where Lumen's time goes for the archive-benchmark loads (run after archive.sh,
# which leaves the series and the release binary in place).
#
#   bash bench/profile.sh                      # all scenarios, data dir on $WORK (disk)
#   DATA_ROOT=/dev/shm bash bench/profile.sh   # same on tmpfs (fsync is free there)
#
# Per scenario (fresh Lumen, fresh data dir): wall time; `strace -c -w -f` syscall summary (wall-clock time per syscall)
# (separate pass, strace slows things down); `perf record -g` + top symbols (separate pass).
# (strace is attached at Lumen start, so the jpeg summary includes storing the series first.)
# Scenarios: cstore1 (storescu, 1 association), cstore4 (4 associations), stow (one raw
# STOW-RS request of 300), jpeg (50x instances/{sop}/rendered image/jpeg).
# Output: $WORK/profile/<scenario>-{strace.txt,perf.txt} and a summary on stdout.
# Env: WORK=/tmp/lumen-archive-bench VENV=/tmp/peerenv CARGO_TARGET_DIR=/work/target-bench
#      LUMEN_BIN=... DATA_ROOT=$WORK/profile SCENARIOS="cstore1 cstore4 stow jpeg" PERF=1 STRACE=1
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
WORK=${WORK:-/tmp/lumen-archive-bench}
VENV=${VENV:-/tmp/peerenv}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
LUMEN_BIN=${LUMEN_BIN:-$CARGO_TARGET_DIR/release/lumen}
SERIES=$WORK/peer/series
OUTD=$WORK/profile
DATA_ROOT=${DATA_ROOT:-$OUTD}
SCENARIOS=${SCENARIOS:-"cstore1 cstore4 stow jpeg"}
PERF=${PERF:-1}
STRACE=${STRACE:-1}
PY=$VENV/bin/python
HTTP=127.0.0.1:18043
DICOM_PORT=14244

if [[ -z ${_PROFILE_IN_NETNS:-} ]]; then
  exec unshare --net env _PROFILE_IN_NETNS=1 bash "$HERE/profile.sh" "$@"
fi
ip link set lo up
mkdir -p "$OUTD"
export TCP_NODELAY=1
# Lumen reads every LUMEN_* variable as configuration (unknown keys are errors): keep LUMEN_LOG only
UNSET=($(env | grep -o '^LUMEN_[A-Za-z0-9_]*' | grep -vx LUMEN_LOG | sed 's/^/-u /' || true))

LPID=
WPID=
DATA=
cd "$OUTD"
start_lumen() {   # [wrapper...]: e.g. strace -c -f -o FILE
  DATA=$DATA_ROOT/lumen-profile-data; rm -rf "$DATA"
  if [[ $# -gt 0 ]]; then
    env "${UNSET[@]}" "$@" "$LUMEN_BIN" serve --data "$DATA" --http "$HTTP" --dicom "127.0.0.1:$DICOM_PORT" --aet LUMEN \
      >>"$OUTD/lumen.log" 2>&1 &
    WPID=$!
    for _ in $(seq 100); do LPID=$(pgrep -P "$WPID" | head -1 || true); [[ -n $LPID ]] && break; sleep 0.05; done
  else
    env "${UNSET[@]}" "$LUMEN_BIN" serve --data "$DATA" --http "$HTTP" --dicom "127.0.0.1:$DICOM_PORT" --aet LUMEN \
      >>"$OUTD/lumen.log" 2>&1 &
    LPID=$!; WPID=
  fi
  for _ in $(seq 300); do curl -sf "http://$HTTP/health" >/dev/null && return 0; sleep 0.05; done
  echo "lumen did not start" >&2; exit 1
}
stop_lumen() {
  if [[ -n $LPID ]]; then
    kill "$LPID" 2>/dev/null || true
    while kill -0 "$LPID" 2>/dev/null; do sleep 0.05; done
  fi
  [[ -n $WPID ]] && { wait "$WPID" 2>/dev/null || true; }
  LPID=; WPID=; [[ -n $DATA ]] && rm -rf "$DATA"; return 0
}
trap stop_lumen EXIT

mapfile -t FILES < <(ls "$SERIES"/*.dcm)
[[ -f $OUTD/stow-body.bin ]] || "$PY" - "$SERIES" "$OUTD/stow-body.bin" <<'EOF'
import glob, sys
B = b"peerbench-6b1f0e2a"
with open(sys.argv[2], "wb") as out:
    for f in sorted(glob.glob(sys.argv[1] + "/*.dcm")):
        out.write(b"--" + B + b"\r\nContent-Type: application/dicom\r\n\r\n" + open(f, "rb").read() + b"\r\n")
    out.write(b"--" + B + b"--\r\n")
EOF

load() {   # $1 scenario
  case $1 in
    cstore1) storescu -aet BENCHSCU -aec LUMEN +sd 127.0.0.1 "$DICOM_PORT" "$SERIES" ;;
    cstore4)
      local pids=() k
      for k in 0 1 2 3; do
        storescu -aet BENCHSCU -aec LUMEN 127.0.0.1 "$DICOM_PORT" $(printf '%s\n' "${FILES[@]}" | awk -v k=$k 'NR%4==k') & pids+=($!)
      done
      for k in "${pids[@]}"; do wait "$k"; done ;;
    stow) curl -sf -o /dev/null -X POST --data-binary @"$OUTD/stow-body.bin" \
            -H 'Content-Type: multipart/related; type="application/dicom"; boundary=peerbench-6b1f0e2a' \
            -H 'Accept: application/dicom+json' "http://$HTTP/dicom-web/studies" ;;
    jpeg) "$PY" - "$HTTP" "$SERIES" <<'EOF'
import glob, sys, requests, pydicom
files = sorted(glob.glob(sys.argv[2] + "/*.dcm"))
d = pydicom.dcmread(files[0], stop_before_pixels=True)
sops = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
S = requests.Session()
for i in range(50):
    r = S.get(f"http://{sys.argv[1]}/dicom-web/studies/{d.StudyInstanceUID}/series/{d.SeriesInstanceUID}/instances/{sops[(i * 7) % len(sops)]}/rendered",
              headers={"Accept": "image/jpeg"}); r.raise_for_status()
EOF
    ;;
  esac
}

prepare() {   # the jpeg scenario needs the series stored first
  if [[ $1 == jpeg ]]; then load cstore1 >/dev/null; fi
}

now() { date +%s.%N; }
for sc in $SCENARIOS; do
  echo "== $sc (data root $DATA_ROOT)"
  start_lumen; prepare "$sc"; t0=$(now); load "$sc" >/dev/null; t1=$(now)
  ps -o rss=,time= -p "$LPID" | awk '{printf "   lumen RSS %.0f MiB, cpu time %s\n", $1/1024, $2}'
  stop_lumen
  printf "   wall %.3f s (no tracing)\n" "$(echo "$t1 - $t0" | bc)"
  if [[ $STRACE == 1 ]]; then
    start_lumen strace -c -w -f -o "$OUTD/$sc-strace.txt"; prepare "$sc"
    t0=$(now); load "$sc" >/dev/null; t1=$(now)
    stop_lumen
    printf "   wall %.3f s under strace; top syscalls by time:\n" "$(echo "$t1 - $t0" | bc)"
    sed -n '3,10p' "$OUTD/$sc-strace.txt" | sed 's/^/     /'
  fi
  if [[ $PERF == 1 ]]; then
    start_lumen; prepare "$sc"
    perf record -F ${PERF_FREQ:-499} -g -o "$OUTD/$sc.perf.data" -p "$LPID" 2>/dev/null & ppid=$!; sleep 0.5
    load "$sc" >/dev/null
    kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
    stop_lumen
    perf report -i "$OUTD/$sc.perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null \
      | grep -v "^#" | grep -E "^ +[0-9]" | sed "s/  *-  *-  *$//" | cut -c1-160 | head -25 > "$OUTD/$sc-perf.txt" || true
    echo "   perf top self-time symbols:"; head -12 "$OUTD/$sc-perf.txt" | sed 's/^/     /'
  fi
done
