#!/usr/bin/env bash
# Runs Lumen's whole test suite: installs what the tests need, then `cargo test`.
# Tests that need ../shared/data or external tools skip with a message when they are
# missing, unless LUMEN_REQUIRE_DATA=1 / LUMEN_REQUIRE_TOOLS=1 (CI sets both).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export LUMEN_PYTHON=${LUMEN_PYTHON:-$PWD/${LUMEN_VENV:-.venv}/bin/python}
cargo test --workspace --all-targets "$@"
# The archive, AI-on-arrival and review suites again on the distributed parts: the index on
# PostgreSQL (a private server the tests start on a loopback port) and every archive's
# objects in a bucket of a real Garage (scripts/deps.sh test installed it). The store's own
# tests run on both databases and both object stores already.
LUMEN_TEST_DATABASE=postgres LUMEN_TEST_STORAGE=s3 \
  cargo test -p lumen --test archive --test ai_arrival --test review_api "$@"
