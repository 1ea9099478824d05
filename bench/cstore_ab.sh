#!/usr/bin/env bash
# cstore_ab.sh - C-STORE throughput of several lumen binaries, alternated, to compare a
# change with its base on the same machine in the same minutes (Orthanc is not involved:
# archive.sh gives the ratio against it).
#
#   bash bench/cstore_ab.sh 4 /tmp/lumen-before /tmp/lumen-after
#
# Per repetition and binary: a fresh data dir, `lumen serve`, the archive benchmark's
# 300-slice series (run archive.sh once first) sent with storescu over one association,
# then again over four in parallel; prints inst/s per run and the medians. Runs in a
# private network namespace (unshare --net). Env: SERIES=/tmp/lumen-archive-bench/peer/series
# DATA_ROOT=/tmp/lumen-cstore-ab
set -euo pipefail
if [[ -z ${_AB_IN_NETNS:-} ]]; then
  exec unshare --net env _AB_IN_NETNS=1 bash "$(readlink -f "$0")" "$@"
fi
ip link set lo up
export TCP_NODELAY=1
REPS=${1:?usage: cstore_ab.sh REPS BIN...}; shift
S=${SERIES:-/tmp/lumen-archive-bench/peer/series}
D=${DATA_ROOT:-/tmp/lumen-cstore-ab}
N=$(ls "$S" | wc -l)
[[ $N -gt 0 ]] || { echo "no series in $S (run bench/archive.sh once)" >&2; exit 1; }
one() { # binary scenario
  rm -rf "$D"; mkdir -p "$D"
  env -u LUMEN_LOG "$1" serve --data "$D/data" --http 127.0.0.1:18043 --dicom 127.0.0.1:14244 \
    --aet LUMEN >"$D/log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do curl -sf http://127.0.0.1:18043/health >/dev/null && break; sleep 0.05; done
  local t0 t1
  t0=$(date +%s.%N)
  if [[ $2 == cstore1 ]]; then
    storescu -aet BENCHSCU -aec LUMEN +sd 127.0.0.1 14244 "$S" >/dev/null 2>&1
  else
    ls "$S" | split -n r/4 - "$D/part."
    local pids=()
    for p in "$D"/part.*; do
      (cd "$S" && storescu -aet BENCHSCU -aec LUMEN 127.0.0.1 14244 $(cat "$p") >/dev/null 2>&1) &
      pids+=($!)
    done
    wait "${pids[@]}"
  fi
  t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$1 $2 $(echo "$N/($t1-$t0)" | bc)"
}
results=$(for _ in $(seq "$REPS"); do for b in "$@"; do one "$b" cstore1; one "$b" cstore4; done; done)
echo "$results" | awk '{print $1, $2, $3, "inst/s"}'
echo "medians:"
echo "$results" | sort -k1,1 -k2,2 -k3,3n | awk '{k=$1" "$2; v[k]=v[k]" "$3; n[k]++} END {for (k in v) {split(v[k], a, " "); m=(n[k]%2)? a[(n[k]+1)/2] : (a[n[k]/2]+a[n[k]/2+1])/2; print "  " k ": " m " inst/s"}}'
