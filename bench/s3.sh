#!/usr/bin/env bash
# s3.sh - ingest throughput with objects as files vs in a bucket on a real Garage, same run.
#
#   bash bench/s3.sh            # REPS=3; prints per-run figures and the medians
#
# For each repetition and each storage (files, s3): a fresh data directory (and bucket),
# `lumen serve` started, then the 133 LIDC-IDRI-0001 CT files sent with DCMTK's storescu
# (one association) and, to another fresh archive, as one STOW-RS request (curl). Garage is
# started once, single-node on loopback, as the tests start it.
#
# Env: LUMEN_BIN (default $CARGO_TARGET_DIR/release/lumen), LUMEN_GARAGE (default
#      .cache/garage/bin/garage, else garage on PATH), REPS=3, WORK=/tmp/lumen-s3-bench,
#      DATA=<repo>/../shared/data/lidc-idri-0001/ct
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LUMEN_BIN=${LUMEN_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/lumen}
GARAGE=${LUMEN_GARAGE:-$REPO/.cache/garage/bin/garage}
[[ -x $GARAGE ]] || GARAGE=$(command -v garage)
REPS=${REPS:-3}
WORK=${WORK:-/tmp/lumen-s3-bench}
DATA=${DATA:-$REPO/../shared/data/lidc-idri-0001/ct}
[[ -x $LUMEN_BIN ]] || { echo "no lumen binary at $LUMEN_BIN" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# --- Garage, single node
G=$WORK/garage; mkdir -p "$G"
RPC=$(port); S3=$(port); ADMIN=$(port)
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$G/garage.toml" <<EOF
metadata_dir = "$G/meta"
data_dir = "$G/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC"
rpc_public_addr = "127.0.0.1:$RPC"
rpc_secret = "$SECRET"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3"
[admin]
api_bind_addr = "127.0.0.1:$ADMIN"
admin_token = "$SECRET"
EOF
gcli() { "$GARAGE" -c "$G/garage.toml" "$@"; }
RUST_LOG=warn "$GARAGE" -c "$G/garage.toml" server > "$G/log" 2>&1 &
GPID=$!
LPID=
cleanup() { [[ -n $LPID ]] && kill "$LPID" 2>/dev/null; kill "$GPID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do NODE=$(gcli node id -q 2>/dev/null | cut -d@ -f1) && [[ -n $NODE ]] && break; sleep 0.2; done
gcli layout assign -z dc1 -c 10G "$NODE" >/dev/null
gcli layout apply --version 1 >/dev/null
KEYINFO=$(gcli key create bench)
KEY_ID=$(awk -F': *' '/Key ID/{print $2}' <<<"$KEYINFO")
KEY_SECRET=$(awk -F': *' '/Secret key/{print $2}' <<<"$KEYINFO")

# --- the STOW-RS body: all files in one multipart/related request
BOUNDARY=lumen-s3-bench-boundary
BODY=$WORK/stow.body
: > "$BODY"
for f in "$DATA"/*.dcm; do
  printf -- '--%s\r\nContent-Type: application/dicom\r\n\r\n' "$BOUNDARY" >> "$BODY"
  cat "$f" >> "$BODY"; printf '\r\n' >> "$BODY"
done
printf -- '--%s--\r\n' "$BOUNDARY" >> "$BODY"
N=$(ls "$DATA"/*.dcm | wc -l)
MB=$(du -bc "$DATA"/*.dcm | tail -1 | awk '{printf "%.1f", $1/1e6}')

# start_lumen KIND NAME: a fresh archive (and bucket) with an account; sets HTTP, DICOM, TOKEN
start_lumen() {
  local kind=$1 name=$2 dir=$WORK/$1-$2
  mkdir -p "$dir"
  : > "$dir.toml"
  if [[ $kind == s3 ]]; then
    gcli bucket create "lumen-$name" >/dev/null
    gcli bucket allow --read --write --owner "lumen-$name" --key bench >/dev/null
    cat > "$dir.toml" <<EOF
[storage]
kind = "s3"
bucket = "lumen-$name"
endpoint = "http://127.0.0.1:$S3"
region = "garage"
access_key_id = "$KEY_ID"
secret_access_key = "$KEY_SECRET"
EOF
  fi
  echo bench-password-1 | "$LUMEN_BIN" user add --data "$dir/data" --config "$dir.toml" \
    --username bench --role technologist --password-stdin >/dev/null 2>&1
  HTTP=$(port); DICOM=$(port)
  LUMEN_LOG=warn "$LUMEN_BIN" serve --config "$dir.toml" --data "$dir/data" --http "127.0.0.1:$HTTP" \
    --dicom "127.0.0.1:$DICOM" --aet LUMEN > "$dir.log" 2>&1 &
  LPID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null && break; sleep 0.1; done
  TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"bench-password-1"}' \
    "http://127.0.0.1:$HTTP/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}
stop_lumen() { kill "$LPID"; wait "$LPID" 2>/dev/null || true; LPID=; }

declare -A RES
for rep in $(seq "$REPS"); do
  for kind in files s3; do
    start_lumen "$kind" "cstore-$rep"
    t0=$(now); storescu -aec LUMEN 127.0.0.1 "$DICOM" "$DATA"/*.dcm; t1=$(now)
    stop_lumen
    c=$(echo "$N / ($t1 - $t0)" | bc -l)
    start_lumen "$kind" "stow-$rep"
    t0=$(now)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
      -H "Content-Type: multipart/related; type=\"application/dicom\"; boundary=$BOUNDARY" \
      --data-binary @"$BODY" "http://127.0.0.1:$HTTP/dicom-web/studies")
    t1=$(now)
    stop_lumen
    [[ $code == 200 ]] || { echo "STOW-RS answered $code" >&2; exit 1; }
    s=$(echo "$N / ($t1 - $t0)" | bc -l)
    printf 'rep %d %-5s  C-STORE %6.1f inst/s   STOW-RS %6.1f inst/s\n' "$rep" "$kind" "$c" "$s"
    RES[$kind-cstore]+="$c "; RES[$kind-stow]+="$s "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "== medians of $REPS runs, $N CT instances ($MB MB), $(nproc) CPUs, $(date -Is)"
for kind in files s3; do
  printf '%-5s  C-STORE %6.1f inst/s   STOW-RS %6.1f inst/s\n' "$kind" \
    "$(median <<<"${RES[$kind-cstore]}")" "$(median <<<"${RES[$kind-stow]}")"
done
