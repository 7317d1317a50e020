# root.sh: sourced (not run) by the scripts that need root (tests, CI, demo,
# install, benchmarks), which are often started through sudo.

# need_root NAME: unless this shell is root, says why NAME needs root and what to
# run instead, and exits 1. Without root the integration tests cannot make their
# network namespaces, so running them would only fail.
need_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    cat >&2 <<MSG
$1: needs root: bootd's integration tests create network namespaces, veth pairs
and taps, bind ports below 1024 and boot virtual machines.
Run it as root: sudo $1 (or $1 in a root shell).
Without root, \`cargo test\` runs the unit and property tests and the integration
tests that need no root, and lists the others as ignored.
MSG
    exit 1
}

# find_cargo: puts cargo on PATH. sudo replaces PATH with its secure_path, which
# holds no rustup install: look where rustup puts cargo for root, then for the user
# who ran sudo (whose toolchains then serve root; crates still go to root's cargo
# home, so nothing root-owned lands in that user's).
find_cargo() {
    use_roots_target_dir
    command -v cargo >/dev/null && return 0
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin" user_home=""
    if [ -x "$bin/cargo" ]; then
        PATH="$bin:$PATH"
        return 0
    fi
    if [ -n "${SUDO_USER:-}" ]; then
        user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    fi
    if [ -n "$user_home" ] && [ -x "$user_home/.cargo/bin/cargo" ]; then
        PATH="$user_home/.cargo/bin:$PATH"
        if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$user_home/.rustup" ]; then
            export RUSTUP_HOME="$user_home/.rustup"
        fi
        return 0
    fi
    echo "cargo is not on PATH, nor in $bin${user_home:+ or $user_home/.cargo/bin}:" \
        "install Rust (rustup), or run: sudo env \"PATH=\$PATH\" $0" >&2
    exit 1
}

# use_roots_target_dir: root building in a checkout that is not root's (sudo
# scripts/test.sh from a user's clone) would leave a root-owned target/ behind, and
# the user's next `cargo build` would fail on it. Root builds in a directory of its
# own instead, one per checkout, kept between runs so that a second run is quick;
# CARGO_TARGET_DIR, when set, is left alone. Scripts name the built binaries as
# ${CARGO_TARGET_DIR:-target}/release/bootd.
use_roots_target_dir() {
    [ "$(id -u)" -eq 0 ] || return 0
    [ -z "${CARGO_TARGET_DIR:-}" ] || return 0
    [ "$(stat -c %u .)" -ne 0 ] || return 0
    local home checkout
    home=$(getent passwd root | cut -d: -f6)
    checkout=$(pwd -P | sha256sum | cut -c1-12)
    export CARGO_TARGET_DIR="${home:-/root}/.cache/bootd/target-$checkout"
    mkdir -p "$CARGO_TARGET_DIR"
    echo "building as root in $CARGO_TARGET_DIR (this checkout is $(stat -c %U .)'s: its target/ stays theirs)" >&2
}
