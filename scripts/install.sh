#!/usr/bin/env bash
# install.sh: build bootd and install the binary, the systemd unit and a sample
# configuration (an existing /etc/bootd.ini is never overwritten).
#
#   sudo scripts/install.sh [--prefix /usr] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo $0)" >&2; exit 1; }

if [ "$build" = 1 ]; then
    . scripts/root.sh
    find_cargo
    cargo build --release --locked
fi
install -D -m 0755 "${CARGO_TARGET_DIR:-target}/release/bootd" "$prefix/sbin/bootd"
install -D -m 0644 conf/bootd.service /etc/systemd/system/bootd.service
if [ -e /etc/bootd.ini ]; then
    install -D -m 0644 conf/bootd.ini /etc/bootd.ini.sample
    echo "kept the existing /etc/bootd.ini; the new sample is /etc/bootd.ini.sample"
else
    install -D -m 0644 conf/bootd.ini /etc/bootd.ini
fi
install -d -m 0755 /srv/tftp
install -D -m 0644 README.md "$prefix/share/doc/bootd/README.md"
install -D -m 0755 scripts/forward.sh "$prefix/share/bootd/forward.sh"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
cat <<MSG
bootd installed. Next:
  1. edit /etc/bootd.ini (pool_start must lie in the boot network)
  2. put the boot files in /srv/tftp (or set [tftp] root)
  3. bootd --check -c /etc/bootd.ini
  4. systemctl enable --now bootd && journalctl -u bootd -f
MSG
