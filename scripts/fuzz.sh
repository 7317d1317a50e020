#!/usr/bin/env bash
# fuzz.sh: coverage-guided fuzzing (cargo fuzz, libFuzzer) of the parsers that
# read what clients, disks and sysadmins hand bootd: DHCP and TFTP datagrams,
# HTTP requests, the lease file, the configuration. Each target of
# fuzz/Cargo.toml runs for a bounded time, starting from its corpus in
# fuzz/corpus/<target>; a table of executions per second and coverage follows.
# Exits 1 if any input crashed a target (the input is left in
# fuzz/artifacts/<target>/, with the command that replays it).
#
#   scripts/fuzz.sh [--merge] [SECONDS-PER-TARGET] [TARGET...]
#
# SECONDS-PER-TARGET defaults to 40 (BOOTD_FUZZ_SECONDS). New inputs found go to a
# scratch directory; --merge adds those that reach new code to fuzz/corpus/, to be
# committed. The targets run in a network namespace of their own with no
# interface up: the configuration loader resolves `notify` host names, and no
# lookup may leave the machine. Needs root for that namespace, or unprivileged
# user namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/root.sh
find_cargo

merge=0
if [ "${1:-}" = "--merge" ]; then
    merge=1
    shift
fi
seconds="${1:-${BOOTD_FUZZ_SECONDS:-40}}"
[ $# -gt 0 ] && shift
case "$seconds" in
    '' | *[!0-9]*)
        echo "fuzz.sh: SECONDS-PER-TARGET must be a whole number, not '$seconds'" >&2
        exit 2
        ;;
esac

# cargo-fuzz from crates.io, at the version this script was written for.
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# cargo fuzz passes rustc flags only nightly accepts (the coverage instrumentation,
# sanitizers); the one toolchain here is stable, which accepts them with
# RUSTC_BOOTSTRAP=1. Debug assertions on (-a): an overflow is a finding too. No
# sanitizer (-s none): the parsers are safe Rust, so AddressSanitizer would find
# nothing a panic does not, at a third of the executions per second.
export RUSTC_BOOTSTRAP=1
fuzz_flags=(--fuzz-dir fuzz -a -s none)
cargo fuzz build "${fuzz_flags[@]}"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release

# The namespace: as root a plain one, otherwise inside a user namespace.
if [ "$(id -u)" -eq 0 ]; then
    isolate=(unshare --net --)
else
    isolate=(unshare --user --map-root-user --net --)
fi
if ! "${isolate[@]}" true 2>/dev/null; then
    echo "fuzz.sh: cannot make a network namespace (${isolate[*]}); run as root" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
rows=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    found="$scratch/$target"
    mkdir -p "$found" "fuzz/artifacts/$target" "$corpus"
    log="$scratch/$target.log"
    echo "== $target: ${seconds} s from $(find "$corpus" -type f | wc -l) inputs in $corpus"
    status=0
    "${isolate[@]}" "$bin_dir/$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
        "$found" "$corpus" >"$log" 2>&1 || status=$?
    grep -E '^(INFO: seed corpus|#[0-9]+.*(INITED|DONE))' "$log" | sed 's/^/   /' || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    features=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    units=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "   FAILED (exit $status):"
        grep -E 'panicked|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY|Test unit written' "$log" | sed 's/^/   /' || true
        tail -n 40 "$log" | sed 's/^/   | /'
        for input in "fuzz/artifacts/$target"/*; do
            [ -f "$input" ] && echo "   replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${fuzz_flags[*]} $target $input"
        done
    fi
    if [ "$merge" -eq 1 ] && [ "$status" -eq 0 ]; then
        # The seeds and the inputs that once crashed stay; of the others, only
        # those that reach code nothing before them reaches (edges, not hit
        # counts or comparisons: a small corpus, fit for the repository).
        merged="$scratch/$target.merged"
        mkdir -p "$merged"
        find "$corpus" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'crash-*' \) -exec cp {} "$merged"/ \;
        "${isolate[@]}" "$bin_dir/$target" -merge=1 -use_counters=0 -use_cmp=0 \
            "$merged" "$corpus" "$found" >"$scratch/$target.merge" 2>&1
        find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' -delete
        cp "$merged"/* "$corpus"/
        echo "   merged: $(find "$corpus" -type f | wc -l) inputs in $corpus"
    fi
    rows+=("$(printf '%-14s %5s s %10s %8s %6s %7s %7s  %s' "$target" "$seconds" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${features:-?}" "${units:-?}" \
        "$([ "$status" -eq 0 ] && echo ok || echo CRASHED)")")
done

echo
printf '%-14s %7s %10s %8s %6s %7s %7s  %s\n' target time executions exec/s cov features corpus result
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) crashed: ${failed[*]}" >&2
fi
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
