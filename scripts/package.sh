#!/usr/bin/env bash
# package.sh: build bootd's Debian package with cargo-deb (installed at a pinned
# version if missing), and with --test install it, check what it installed, and
# remove it again:
#   - dpkg -i, and the service neither enabled nor started;
#   - bootd --check on the installed sample, in a network namespace holding the
#     sample's documentation network (192.0.2.1/24), so that nothing here is served;
#   - man -w bootd and man -w bootd.ini;
#   - dpkg --purge, which leaves none of its files behind.
# Run as root (CI does):  scripts/package.sh [--test]
# Prints the package's path. Bounded: each step that could hang runs under timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/root.sh
need_root scripts/package.sh
find_cargo

CARGO_DEB_VERSION=3.8.0
test_it=0
case "${1:-}" in
    --test) test_it=1 ;;
    "") ;;
    *) echo "package.sh: unknown argument $1 (--test)" >&2; exit 2 ;;
esac

if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    echo "== installing cargo-deb $CARGO_DEB_VERSION" >&2
    timeout 1800 cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

echo "== building the package" >&2
deb=$(timeout 1800 cargo deb --locked --quiet 2>/dev/null | tail -n 1)
[ -f "$deb" ] || { echo "package.sh: cargo deb made no package" >&2; exit 1; }
echo "$deb"
[ "$test_it" = 1 ] || exit 0

if dpkg-query -W -f='${Status}' bootd 2>/dev/null | grep -q "install ok installed"; then
    echo "package.sh: a bootd package is installed already: not touching it" >&2
    exit 1
fi
ns="bdpkg$$"
made_srv=0
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    dpkg --purge bootd >/dev/null 2>&1 || true
    if [ "$made_srv" = 1 ]; then rmdir /srv/tftp 2>/dev/null || true; fi
}
trap cleanup EXIT

fail() { echo "package.sh: $*" >&2; exit 1; }

echo "== installing $deb" >&2
timeout 300 dpkg -i "$deb" >/dev/null
for file in /usr/sbin/bootd /etc/bootd.ini /usr/share/doc/bootd/README.md; do
    [ -e "$file" ] || fail "$file is not installed"
done
unit=$(dpkg -L bootd | grep '/bootd\.service$') || fail "no systemd unit installed"
grep -q '^Type=notify' "$unit" || fail "$unit is not Type=notify"
[ -d /var/lib/bootd ] || fail "/var/lib/bootd is not created"
# Installing must not start it (nor enable it).
# (Only the installed binary: bootd's own tests may run other copies meanwhile.)
pgrep -f '^/usr/sbin/bootd' >/dev/null && fail "the package started bootd"
if [ -d /run/systemd/system ]; then
    systemctl is-enabled --quiet bootd && fail "the package enabled bootd"
fi

echo "== bootd --check on the installed sample" >&2
if [ ! -d /srv/tftp ]; then
    mkdir -p /srv/tftp
    made_srv=1
fi
ip netns add "$ns"
ip -n "$ns" link add bd0 type veth peer name bd1
ip -n "$ns" link set bd1 up
ip -n "$ns" addr add 192.0.2.1/24 dev bd0
ip -n "$ns" link set bd0 up
ip -n "$ns" link set lo up
timeout 30 ip netns exec "$ns" /usr/sbin/bootd --check --quiet -c /etc/bootd.ini \
    || fail "bootd --check fails on the installed sample"

echo "== the manual pages" >&2
man -w bootd >/dev/null || fail "man -w bootd finds no page"
man -w bootd.ini >/dev/null || fail "man -w bootd.ini finds no page"

echo "== removing it" >&2
timeout 300 dpkg --purge bootd >/dev/null
for file in /usr/sbin/bootd /etc/bootd.ini /var/lib/bootd; do
    [ ! -e "$file" ] || fail "$file is left after dpkg --purge"
done
echo "== the package installs, checks and removes cleanly" >&2
