#!/usr/bin/env bash
# bench-boot.sh: how long a BIOS machine takes from power-on to its operating
# system's address, booting through TFTP and through iPXE + HTTP, in one run.
#   sudo scripts/bench-boot.sh
#
# The machine is the VM tests' (QEMU, software emulation, SeaBIOS and QEMU's iPXE
# option ROM, no disk) and boots the same Debian kernel and busybox initramfs
# (scripts/vm-assets.sh) both ways:
#   tftp   the firmware gets pxelinux.0, which loads ldlinux.c32, its configuration,
#          vmlinuz and initrd.gz over TFTP (the demo's chain);
#   http   the firmware, being iPXE, gets http://SERVER/boot.ipxe ([bootfile] ipxe
#          with -H), a script loading vmlinuz and initrd.gz over HTTP.
# The ways take turns, BOOTS boots each, each boot a new machine (its own MAC) and
# a bootd started afresh. Printed: each boot's time to the marker the initramfs
# prints once it has its address, the median of each way, and their ratio. Both
# ways share the firmware's own cost (iPXE spends ~13 s "Configuring": waiting for
# IPv6 router advertisements this network does not send), so the ratio of the
# whole boot understates the ratio of the transfers: bootd's log gives those too.
#
# A private network as in the demo (two namespaces joined by a veth pair, the
# machine's tap on a bridge); no traffic leaves it; everything is removed on exit
# or interrupt. QEMU under TCG keeps a CPU busy: on a shared machine the figures
# move with the other work (the script prints the load average).
#
# Environment: BOOTS (3), BOOTD (a prebuilt binary instead of `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)
BOOTS=${BOOTS:-3}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-boot.sh: run as root (it creates network namespaces)" >&2
    exit 1
fi
. scripts/root.sh
scripts/deps.sh
if [ -n "${BOOTD:-}" ]; then
    bootd=$(realpath "$BOOTD")
else
    find_cargo
    cargo build --release --locked --quiet
    bootd="$root_dir/target/release/bootd"
fi

tag="bbt$$"
srv="${tag}srv" cli="${tag}cli"
work=$(mktemp -d /tmp/bootd-bench-boot.XXXXXX)
server=10.124.0.1
pids=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/vm-assets.sh "$work/tftp" > /dev/null

ip netns add "$srv"
ip netns add "$cli"
ip link add "${tag}s" netns "$srv" type veth peer name "${tag}c" netns "$cli"
ip -n "$srv" addr add "$server/24" brd + dev "${tag}s"
ip -n "$srv" link set lo up
ip -n "$srv" link set "${tag}s" up
ip -n "$cli" link set lo up
ip -n "$cli" link add "${tag}b" type bridge
ip -n "$cli" link set "${tag}c" master "${tag}b"
ip -n "$cli" tuntap add dev "${tag}t" mode tap
ip -n "$cli" link set "${tag}t" master "${tag}b"
for dev in "${tag}c" "${tag}t" "${tag}b"; do ip -n "$cli" link set "$dev" up; done

# config WAY: bootd's configuration for that way.
config() {
    local ipxe=""
    [ "$1" = http ] && ipxe="ipxe = boot.ipxe"
    cat > "$work/bootd-$1.ini" <<INI
[logger]
level = info
[bootp]
pool_start = 10.124.0.100
pool_count = 50
allow_simple_dhcp = off
lease_file = leases-$1
[bootfile]
default = pxelinux.0
$ipxe
[tftp]
root = tftp
[filters]
pxelinux.cfg/* = pxelinux.cfg/default
INI
}
config tftp
config http

# boot WAY N: one boot; prints its seconds to the marker, or fails.
boot() {
    local way=$1 n=$2
    local mac log console
    mac=$(printf '52:54:00:24:%02x:%02x' "$([ "$way" = tftp ] && echo 1 || echo 2)" "$n")
    log="$work/$way-$n.log"
    console="$work/$way-$n.console"
    rm -f "$work/leases-$way"
    ip netns exec "$srv" "$bootd" -c "$work/bootd-$way.ini" -H 2> "$log" &
    local bootd_pid=$!
    pids+=("$bootd_pid")
    for _ in $(seq 100); do
        grep -q "serving HTTP" "$log" && grep -q "serving BOOTP" "$log" && break
        sleep 0.1
    done
    local start end marker=""
    start=$(date +%s.%N)
    ip netns exec "$cli" qemu-system-x86_64 -machine pc,accel=tcg -m 512 -nodefaults \
        -nographic -serial stdio -monitor none -no-reboot -boot n \
        -netdev "tap,id=n0,ifname=${tag}t,script=no,downscript=no" \
        -device "virtio-net-pci,netdev=n0,mac=$mac" < /dev/null > "$console" 2>&1 &
    local qemu_pid=$!
    pids+=("$qemu_pid")
    for _ in $(seq 3000); do
        marker=$(grep -a -m1 -o 'BOOTD-VM-UP.*' "$console" 2>/dev/null || true)
        [ -n "$marker" ] && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.1
    done
    end=$(date +%s.%N)
    for _ in $(seq 100); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$qemu_pid" "$bootd_pid" 2>/dev/null || true
    wait "$qemu_pid" "$bootd_pid" 2>/dev/null || true
    if [ -z "$marker" ]; then
        echo "bench-boot.sh: $way boot $n: no marker within 300 s; bootd's log:" >&2
        cat "$log" >&2
        exit 1
    fi
    # The kernel and initramfs transfers, as bootd logged them.
    local transfers
    if [ "$way" = tftp ]; then
        transfers=$(grep -o 'sent \(vmlinuz\|initrd.gz\): [0-9]* bytes in .*, [0-9.]* s,' "$log" \
            | awk '{ s += $(NF - 1) } END { printf "%.2f", s }')
    else
        transfers=$(grep -o 'GET /\(vmlinuz\|initrd.gz\) 200, [0-9]* bytes in [0-9.]* s' "$log" \
            | awk '{ s += $(NF - 1) } END { printf "%.2f", s }')
    fi
    awk -v a="$start" -v b="$end" -v t="$transfers" -v w="$way" -v n="$n" \
        'BEGIN { printf "%-4s boot %d: %6.1f s to the marker (kernel + initramfs sent in %s s)\n", w, n, b - a, t }' >&2
    awk -v a="$start" -v b="$end" -v t="$transfers" 'BEGIN { printf "%.2f %s\n", b - a, t }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== $BOOTS boots each way, taking turns; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$work/tftp.times"
: > "$work/http.times"
for n in $(seq "$BOOTS"); do
    boot tftp "$n" >> "$work/tftp.times"
    boot http "$n" >> "$work/http.times"
done
tftp_boot=$(cut -d' ' -f1 "$work/tftp.times" | median)
http_boot=$(cut -d' ' -f1 "$work/http.times" | median)
tftp_xfer=$(cut -d' ' -f2 "$work/tftp.times" | median)
http_xfer=$(cut -d' ' -f2 "$work/http.times" | median)
echo "== medians (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v tb="$tftp_boot" -v hb="$http_boot" -v tx="$tftp_xfer" -v hx="$http_xfer" 'BEGIN {
    printf "   power-on to marker: TFTP %.1f s, iPXE + HTTP %.1f s: %.2fx\n", tb, hb, tb / hb
    if (hx > 0) printf "   kernel + initramfs: TFTP %.2f s, HTTP %.2f s: %.1fx\n", tx, hx, tx / hx
}'
