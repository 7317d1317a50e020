#!/usr/bin/env bash
# deps.sh: install the Debian packages bootd's tests and demo use (as root).
# Packages already present are skipped, so a second run costs no download.
set -euo pipefail

packages=(
    # namespaces, firewall (packet loss, forward.sh), captures
    iproute2 nftables tcpdump util-linux procps
    # real clients
    busybox isc-dhcp-client dhcpcd-base tftp-hpa atftp curl wget
    # the site's own DHCP server that bootd boots machines beside in proxy mode
    # (integration/proxy.rs, vm.rs): dnsmasq's binary alone, no service
    dnsmasq-base
    # NBD clients (integration/nbd.rs): nbdinfo and nbdcopy, qemu-img and qemu-io
    libnbd-bin qemu-utils
    # test helpers (HTTP servers, crafted packets); systemd-analyze checks the unit
    python3 systemd
    # virtual machines booting through bootd (integration/vm.rs, demo.sh): QEMU with
    # its iPXE option ROMs (BIOS), iPXE itself to chainload (ipxe) and OVMF (UEFI); the boot files pxelinux, ldlinux.c32
    # and a GRUB network image; depmod and cpio to make the initramfs. The kernel and
    # busybox-static (which conflicts with busybox) are fetched by scripts/vm-assets.sh
    # with apt-get download, not installed. The diskless machine's initramfs takes
    # nbd-client's libraries from this host (the client itself is fetched too), and
    # its root file system is made with mke2fs.
    qemu-system-x86 ipxe-qemu ipxe ovmf pxelinux syslinux-common grub-efi-amd64-bin grub-common
    kmod cpio gzip nbd-client e2fsprogs
    # a room full of machines (integration/room.rs, scripts/bench-storm.sh): aria2c
    # as the machines' BitTorrent engine, Debian's opentracker as tracker, gnuplot
    # for the boot-storm plot. Phase 1 (scripts/build-phase1.sh, booted by
    # integration/vm.rs) fetches its packages with apt-get download and needs kmod,
    # cpio and gzip from the list above, and flock (util-linux)
    aria2 opentracker gnuplot-nox
    # promtool checks a scrape of /metrics (integration/http.rs). Debian ships it in
    # the server's package: on a host run by systemd, installing it also starts a
    # Prometheus server on port 9090 (`systemctl disable --now prometheus` stops it)
    prometheus
    # headless Chromium loads /status and keeps a screenshot (integration/http.rs)
    chromium
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
