#!/usr/bin/env bash
# test.sh: the whole test suite: unit and property tests, and the integration
# tests that run the real daemon against real clients and virtual machines in
# network namespaces. Those need root, so a plain `cargo test` lists them as
# ignored; this runs them too (--include-ignored). Run as root:
#   sudo scripts/test.sh
# BOOTD_TEST_THREADS (default 4) sets how many tests run at once. Arguments
# choose what runs, as cargo test takes them: scripts/test.sh --test daemon
# runs the daemon tests alone (and the whole suite without any).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/root.sh
need_root scripts/test.sh
find_cargo
scripts/deps.sh
[ $# -gt 0 ] || set -- --all-targets
cargo test --locked "$@" -- --include-ignored --test-threads="${BOOTD_TEST_THREADS:-4}"
