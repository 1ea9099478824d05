#!/usr/bin/env bash
# Builds Lumen (release) and runs `lumen serve` with the embedded default: SQLite index and
# files under ./lumen-data, DICOMweb at http://127.0.0.1:8080/dicom-web, DICOM on port 11112
# (AE title LUMEN). Extra arguments go to `lumen serve` (see `lumen serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
exec cargo run --release -p lumen -- serve "$@"
