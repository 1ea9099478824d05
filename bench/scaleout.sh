#!/usr/bin/env bash
# scaleout.sh - ingest throughput of the embedded default (SQLite + files) against the
# distributed parts in the same run: objects in a bucket on a real Garage (SQLite index), the
# index on a real PostgreSQL and the objects on Garage, and two front ends on that PostgreSQL
# and Garage.
#
#   bash bench/scaleout.sh            # REPS=3; prints per-run figures and the medians
#
# Kinds: files (SQLite + files), s3 (SQLite + Garage), pg-s3 (PostgreSQL + Garage), pg-s3-x2
# (two `lumen serve` on PostgreSQL + Garage). For each repetition and kind: fresh archives
# (data directory, bucket, database), then the 133 LIDC-IDRI-0001 CT files sent by two
# storescu associations at once (to the one front end, or one to each) and, to another fresh
# archive, as two STOW-RS requests of half the files at once (curl). Garage and PostgreSQL
# (default durability settings) are started once, single-node on loopback.
#
# Env: LUMEN_BIN (default $CARGO_TARGET_DIR/release/lumen), LUMEN_GARAGE (default
#      .cache/garage/bin/garage, else garage on PATH), REPS=3, WORK=/tmp/lumen-scaleout-bench,
#      KINDS="files s3 pg-s3 pg-s3-x2", DATA=<repo>/../shared/data/lidc-idri-0001/ct
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LUMEN_BIN=${LUMEN_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/lumen}
GARAGE=${LUMEN_GARAGE:-$REPO/.cache/garage/bin/garage}
[[ -x $GARAGE ]] || GARAGE=$(command -v garage)
REPS=${REPS:-3}
WORK=${WORK:-/tmp/lumen-scaleout-bench}
KINDS=${KINDS:-files s3 pg-s3 pg-s3-x2}
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

# --- PostgreSQL, one server; a database per archive (initdb refuses root: run as nobody)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/initdb ]] || { echo "PostgreSQL not installed (scripts/deps.sh test)" >&2; exit 1; }
PGD=$WORK/pg; mkdir -p "$PGD"
asdb() { if [[ $(id -u) == 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi; }
if [[ $(id -u) == 0 ]]; then chown nobody "$PGD"; fi
asdb "$PGBIN/initdb" -D "$PGD/data" -A trust -U lumen >/dev/null
PGPORT=$(port)
asdb "$PGBIN/postgres" -D "$PGD/data" -k "$PGD" -p "$PGPORT" -c listen_addresses=127.0.0.1 > "$PGD/log" 2>&1 &
PGPID=$!
for _ in $(seq 100); do asdb "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.2; done
RUST_LOG=warn "$GARAGE" -c "$G/garage.toml" server > "$G/log" 2>&1 &
GPID=$!
LPID=
cleanup() { kill $LPID "$GPID" ${PGPID:-} 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do NODE=$(gcli node id -q 2>/dev/null | cut -d@ -f1) && [[ -n $NODE ]] && break; sleep 0.2; done
gcli layout assign -z dc1 -c 10G "$NODE" >/dev/null
gcli layout apply --version 1 >/dev/null
KEYINFO=$(gcli key create bench)
KEY_ID=$(awk -F': *' '/Key ID/{print $2}' <<<"$KEYINFO")
KEY_SECRET=$(awk -F': *' '/Secret key/{print $2}' <<<"$KEYINFO")

# --- two STOW-RS bodies, half the files each, and the files in two halves for storescu
BOUNDARY=lumen-scaleout-bench-boundary
FILES=("$DATA"/*.dcm)
N=${#FILES[@]}
HALF=$(( (N + 1) / 2 ))
PART1=("${FILES[@]:0:$HALF}"); PART2=("${FILES[@]:$HALF}")
body() { # OUT FILE...
  local out=$1; shift; : > "$out"
  for f in "$@"; do
    printf -- '--%s\r\nContent-Type: application/dicom\r\n\r\n' "$BOUNDARY" >> "$out"
    cat "$f" >> "$out"; printf '\r\n' >> "$out"
  done
  printf -- '--%s--\r\n' "$BOUNDARY" >> "$out"
}
body "$WORK/stow1.body" "${PART1[@]}"; body "$WORK/stow2.body" "${PART2[@]}"
MB=$(du -bc "$DATA"/*.dcm | tail -1 | awk '{printf "%.1f", $1/1e6}')

# start_lumen KIND NAME: fresh archives (data directory, bucket, database) with an account,
# one front end (two for pg-s3-x2); sets HTTPS_ (http ports), DICOMS_ (dicom ports), TOKEN
start_lumen() {
  local kind=$1 name=$2 dir=$WORK/$1-$2
  mkdir -p "$dir"
  : > "$dir.toml"
  if [[ $kind == pg-* ]]; then
    local db="lumen_${name//-/_}_${kind//-/_}"
    asdb "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U lumen "$db"
    echo "database = \"postgres://lumen@127.0.0.1:$PGPORT/$db\"" >> "$dir.toml"
  fi
  if [[ $kind == s3 || $kind == pg-s3* ]]; then
    gcli bucket create "lumen-$kind-$name" >/dev/null
    gcli bucket allow --read --write --owner "lumen-$kind-$name" --key bench >/dev/null
    cat >> "$dir.toml" <<EOF
[storage]
kind = "s3"
bucket = "lumen-$kind-$name"
endpoint = "http://127.0.0.1:$S3"
region = "garage"
access_key_id = "$KEY_ID"
secret_access_key = "$KEY_SECRET"
EOF
  fi
  echo bench-password-1 | "$LUMEN_BIN" user add --data "$dir/data-1" --config "$dir.toml" \
    --username bench --role technologist --password-stdin >/dev/null 2>&1
  local fronts=1; [[ $kind == *-x2 ]] && fronts=2
  HTTPS_=(); DICOMS_=(); LPID=
  for i in $(seq "$fronts"); do
    local http dicom; http=$(port); dicom=$(port)
    LUMEN_LOG=warn "$LUMEN_BIN" serve --config "$dir.toml" --data "$dir/data-$i" --http "127.0.0.1:$http" \
      --dicom "127.0.0.1:$dicom" --aet LUMEN > "$dir-$i.log" 2>&1 &
    LPID="$LPID $!"
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/ready" >/dev/null && break; sleep 0.1; done
    HTTPS_+=("$http"); DICOMS_+=("$dicom")
  done
  TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"bench-password-1"}' \
    "http://127.0.0.1:${HTTPS_[0]}/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}
stop_lumen() { kill $LPID; wait $LPID 2>/dev/null || true; LPID=; }
# front I: the front end the I-th half goes to (the one, or one each)
front() { echo $(( $1 < ${#HTTPS_[@]} ? $1 : 0 )); }

declare -A RES
for rep in $(seq "$REPS"); do
  for kind in $KINDS; do
    start_lumen "$kind" "cstore-$rep"
    t0=$(now)
    storescu -aec LUMEN 127.0.0.1 "${DICOMS_[$(front 0)]}" "${PART1[@]}" & c1=$!
    storescu -aec LUMEN 127.0.0.1 "${DICOMS_[$(front 1)]}" "${PART2[@]}" & c2=$!
    wait $c1 $c2; t1=$(now)
    stop_lumen
    c=$(echo "$N / ($t1 - $t0)" | bc -l)
    start_lumen "$kind" "stow-$rep"
    t0=$(now)
    pids=()
    for i in 0 1; do
      curl -s -o "$WORK/stow$i.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: multipart/related; type=\"application/dicom\"; boundary=$BOUNDARY" \
        --data-binary @"$WORK/stow$((i + 1)).body" "http://127.0.0.1:${HTTPS_[$(front $i)]}/dicom-web/studies" \
        > "$WORK/stow$i.code" &
      pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(now)
    stop_lumen
    for i in 0 1; do
      [[ $(cat "$WORK/stow$i.code") == 200 ]] || { echo "STOW-RS answered $(cat "$WORK/stow$i.code") ($kind)" >&2; exit 1; }
    done
    s=$(echo "$N / ($t1 - $t0)" | bc -l)
    printf 'rep %d %-9s  C-STORE %6.1f inst/s   STOW-RS %6.1f inst/s\n' "$rep" "$kind" "$c" "$s"
    RES[$kind-cstore]+="$c "; RES[$kind-stow]+="$s "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "== medians of $REPS runs, $N CT instances ($MB MB), two associations or requests at once, $(nproc) CPUs, $(date -Is)"
for kind in $KINDS; do
  printf '%-9s  C-STORE %6.1f inst/s   STOW-RS %6.1f inst/s\n' "$kind" \
    "$(median <<<"${RES[$kind-cstore]}")" "$(median <<<"${RES[$kind-stow]}")"
done
