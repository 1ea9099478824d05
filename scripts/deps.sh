#!/usr/bin/env bash
# Installs what building and testing Lumen needs on a Debian machine, idempotently.
#   scripts/deps.sh build   - C toolchain pieces the codecs build with (cmake; nasm for
#                             libjpeg-turbo's SIMD code, which encodes rendered frames)
#   scripts/deps.sh test    - plus DCMTK, dicom3tools, Orthanc and a Python venv (.venv) with the
#                             DICOM clients the tests drive: pydicom, pynetdicom, dicomweb-client,
#                             highdicom (reads back our SEG and SR), dicognito (the independent
#                             de-identifier the export test compares with); headless Chromium with
#                             chromedriver, poppler-utils and CJK fonts for the web app tests,
#                             and OHIF's prebuilt viewer (npm @ohif/app) in .cache/ohif;
#                             rsyslog with GnuTLS and xmllint for the audit tests; PostgreSQL
#                             for the index tests on PostgreSQL; Garage (the S3-compatible
#                             server of the S3 tests), built once into .cache/garage
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}

apt_pkgs=()
command -v cmake >/dev/null || apt_pkgs+=(cmake)
command -v cc >/dev/null || apt_pkgs+=(gcc g++)
command -v nasm >/dev/null || apt_pkgs+=(nasm)
# Report PDFs need a font that shows Chinese (lumen serve finds it at run time).
[[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]] || apt_pkgs+=(fonts-noto-cjk)
if [[ $what == test ]]; then
  command -v storescu >/dev/null || apt_pkgs+=(dcmtk)
  command -v dciodvfy >/dev/null || apt_pkgs+=(dicom3tools)
  # Orthanc: the peer PACS of the interoperability test (qr_orthanc.rs), which runs it in a
  # private network namespace (unshare, ip)
  command -v Orthanc >/dev/null || [[ -x /usr/sbin/Orthanc ]] || apt_pkgs+=(orthanc)
  command -v ip >/dev/null || apt_pkgs+=(iproute2)
  python3 -m venv --help >/dev/null 2>&1 || apt_pkgs+=(python3-venv)
  # The web app tests (webapp.rs): headless Chromium over WebDriver, PDF text, Chinese glyphs
  command -v chromium >/dev/null || apt_pkgs+=(chromium)
  command -v chromedriver >/dev/null || apt_pkgs+=(chromium-driver)
  command -v pdftotext >/dev/null || apt_pkgs+=(poppler-utils)
  # The security tests check the index's append-only rules with the sqlite3 shell
  command -v sqlite3 >/dev/null || apt_pkgs+=(sqlite3)
  [[ -d /usr/share/fonts/opentype/noto ]] || apt_pkgs+=(fonts-noto-cjk)
  command -v npm >/dev/null || apt_pkgs+=(npm)
  # The audit repository of lumen-audit's tests (rsyslog.rs: rsyslogd with TLS by GnuTLS) and
  # the DICOM audit message schema check (schema.rs: xmllint --relaxng)
  command -v rsyslogd >/dev/null || [[ -x /usr/sbin/rsyslogd ]] || apt_pkgs+=(rsyslog)
  [[ -f /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so || -f /usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so ]] || apt_pkgs+=(rsyslog-gnutls)
  command -v xmllint >/dev/null || apt_pkgs+=(libxml2-utils)
  # The PostgreSQL index tests (lumen-store) start a private server in a temporary directory;
  # Debian keeps its binaries in /usr/lib/postgresql/<version>/bin, where the tests look.
  command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_pkgs+=(postgresql)
fi
if ((${#apt_pkgs[@]})); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  echo "installing ${apt_pkgs[*]} (apt)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if [[ $what == test ]]; then
  venv=${LUMEN_VENV:-.venv}
  if ! "$venv/bin/python" -c "import pydicom, pynetdicom, dicomweb_client, highdicom, numpy" 2>/dev/null; then
    echo "creating Python venv $venv (pydicom, pynetdicom, dicomweb-client, highdicom)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q pydicom pynetdicom dicomweb-client highdicom numpy
  fi
  # dicognito: the independent de-identifier tests/export.rs compares `lumen export
  # --deidentify` with (pinned: its choices are part of what the test expects).
  if ! "$venv/bin/python" -c "import dicognito.anonymizer" 2>/dev/null; then
    echo "installing dicognito 0.19.0 into $venv" >&2
    "$venv/bin/pip" install -q dicognito==0.19.0
  fi
fi

if [[ $what == test ]]; then
  # OHIF 3.12 ships a prebuilt dist/: fetch the package tarball only (no dependency tree).
  ohif=.cache/ohif
  if [[ ! -f $ohif/package/dist/index.html ]]; then
    echo "fetching OHIF viewer @ohif/app@3.12.10 (npm) into $ohif" >&2
    mkdir -p "$ohif"
    (cd "$ohif" && npm pack --silent @ohif/app@3.12.10 >/dev/null && tar xzf ohif-app-3.12.10.tgz && rm ohif-app-3.12.10.tgz)
  fi
fi

if [[ $what == test ]]; then
  # Garage 2.5.0: the real S3-compatible server the S3 tests start (crates/lumen/tests/util/
  # garage.rs). Built once from crates.io into the git-ignored .cache/garage (about 15 minutes
  # on two cores: CI keeps .cache between runs). LUMEN_GARAGE=/path/to/garage, or a garage
  # already on PATH, is used instead.
  garage=.cache/garage/bin/garage
  if [[ -n ${LUMEN_GARAGE:-} ]]; then
    [[ -x $LUMEN_GARAGE ]] || { echo "LUMEN_GARAGE=$LUMEN_GARAGE is not an executable" >&2; exit 1; }
  elif [[ ! -x $garage ]] && ! command -v garage >/dev/null; then
    echo "building Garage 2.5.0 (cargo install garage) into .cache/garage" >&2
    CARGO_TARGET_DIR=.cache/garage/target cargo install --root .cache/garage --locked \
      --version 2.5.0 --no-default-features --features bundled-libs,sqlite garage
    rm -rf .cache/garage/target
  fi
fi
