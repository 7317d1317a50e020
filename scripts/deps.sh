#!/usr/bin/env bash
# deps.sh: install the Debian packages bootd's tests and demo use (as root).
# Packages already present are skipped, so a second run costs no download.
set -euo pipefail

packages=(
    # namespaces, firewall (packet loss, forward.sh), captures
    iproute2 nftables tcpdump util-linux procps
    # real clients
    busybox isc-dhcp-client dhcpcd-base tftp-hpa atftp curl
    # test helpers (HTTP servers, crafted packets)
    python3
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: installed ${missing[*]}"
