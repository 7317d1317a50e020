#!/usr/bin/env bash
# test.sh: the whole test suite (unit, property, and integration tests that run
# the real daemon against real clients in network namespaces). Run as root:
#   sudo scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked --all-targets -- --test-threads="${BOOTD_TEST_THREADS:-4}"
