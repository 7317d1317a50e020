#!/usr/bin/env bash
# demo.sh: bootd's main job on a bundled configuration (conf/demo.ini): a virtual
# machine with no disk boots Linux from the network.
#
#   sudo scripts/demo.sh          a BIOS machine (SeaBIOS, its NIC's PXE ROM, pxelinux)
#   sudo scripts/demo.sh --uefi   a UEFI machine (OVMF's own PXE stack, GRUB)
#
# Installs what it needs (scripts/deps.sh), builds bootd, makes a private boot
# network (two network namespaces joined by a veth pair, 10.123.0.0/24; the
# machine's NIC is a tap on a bridge in the second one and sees nothing else),
# starts bootd in the first, and powers on a QEMU machine (software emulation) in
# the second. Shows bootd's log and the machine's console as it boots, prints how
# long the boot took, and removes everything it created, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)

firmware=bios
case "${1:-}" in
"") ;;
--uefi) firmware=uefi ;;
--bios) firmware=bios ;;
*)
    echo "usage: $0 [--bios|--uefi]" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: run as root (it creates network namespaces): sudo $0, or $0 in a root shell" >&2
    exit 1
fi
. scripts/root.sh
find_cargo
scripts/deps.sh

echo "== building bootd (release)"
cargo build --release --locked --quiet
bootd="${CARGO_TARGET_DIR:-$root_dir/target}/release/bootd"

tag="bdd$$"
srv="${tag}srv" cli="${tag}cli"
work=/tmp/bootd-demo
mac=52:54:00:12:34:56
pids=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    # Deleting a namespace deletes the veth pair, the bridge and the tap in it.
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
    rm -rf "$work"
    echo "== cleaned up (the machine, bootd, namespaces, $work)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$work"
mkdir -p "$work"
echo "== boot files in $work/tftp (Debian's pxelinux, GRUB and kernel; a busybox initramfs)"
scripts/vm-assets.sh "$work/tftp" > /dev/null

echo "== making the boot network: $srv (bootd, 10.123.0.1) <-> $cli (bridge + the machine's tap)"
ip netns add "$srv"
ip netns add "$cli"
ip link add "${tag}s" netns "$srv" type veth peer name "${tag}c" netns "$cli"
ip -n "$srv" addr add 10.123.0.1/24 brd + dev "${tag}s"
ip -n "$srv" link set lo up
ip -n "$srv" link set "${tag}s" up
ip -n "$cli" link set lo up
ip -n "$cli" link add "${tag}b" type bridge
ip -n "$cli" link set "${tag}c" master "${tag}b"
ip -n "$cli" tuntap add dev "${tag}t" mode tap
ip -n "$cli" link set "${tag}t" master "${tag}b"
for dev in "${tag}c" "${tag}t" "${tag}b"; do ip -n "$cli" link set "$dev" up; done

# The notification listener (conf/demo.ini: notify = 127.0.0.1:12345).
ip netns exec "$srv" python3 -u -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 12345))
while True:
    data, _ = s.recvfrom(1024)
    print("   notification:", data.decode())
' > "$work/notifications.log" 2>&1 &
pids+=($!)

# Each line as it comes, prefixed; the console without its terminal escapes (the
# firmware clears the screen), and the kernel's own messages reduced to the first.
show_log() { tee "$work/bootd.log" | sed -u 's/^[0-9T:.-]*Z \[\([A-Z]*\)\] /bootd   | [\1] /'; }
show_console() {
    tee "$work/console.log" | sed -u 's/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\x1bc//g; s/\r$//; s/\r/\n/g' \
        | awk -W interactive '
            /^\[ *[0-9]+\.[0-9]+\]/ { if (kernel++ == 0) print "machine | " $0; else if (kernel == 2) print "machine | [... the kernel boots: its messages are in the console log ...]"; fflush(); next }
            NF { print "machine | " $0; fflush() }' 2>/dev/null
}

echo "== starting bootd -c conf/demo.ini"
ip netns exec "$srv" "$bootd" -c conf/demo.ini 2> >(show_log) &
pids+=($!)
for _ in $(seq 50); do
    grep -q "serving TFTP" "$work/bootd.log" 2>/dev/null && break
    sleep 0.1
done

qemu=(qemu-system-x86_64 -machine pc,accel=tcg -m 512 -nodefaults -nographic
    -serial stdio -monitor none -no-reboot -boot n
    -uuid 12345678-abcd-ef00-1111-abcdefabcdef
    -netdev "tap,id=n0,ifname=${tag}t,script=no,downscript=no")
if [ "$firmware" = uefi ]; then
    qemu+=(-bios /usr/share/ovmf/OVMF.fd -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=")
    echo "== powering on a UEFI machine (OVMF, no disk, NIC $mac without option ROM: OVMF's own PXE)"
else
    qemu+=(-device "virtio-net-pci,netdev=n0,mac=$mac")
    echo "== powering on a BIOS machine (SeaBIOS, no disk, NIC $mac with QEMU's PXE ROM, iPXE)"
fi
start=$(date +%s.%N)
ip netns exec "$cli" "${qemu[@]}" < /dev/null > >(show_console) 2>&1 &
qemu_pid=$!
pids+=("$qemu_pid")

marker=""
for _ in $(seq 1800); do
    marker=$(grep -a -m1 -o 'BOOTD-VM-UP.*' "$work/console.log" 2>/dev/null | tr -d '\r' || true)
    [ -n "$marker" ] && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
end=$(date +%s.%N)
if [ -z "$marker" ]; then
    echo "== the machine did not come up within 180 s; bootd's log and its console are above" >&2
    exit 1
fi
# Let it power off.
for _ in $(seq 100); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
sleep 0.3

echo "== what the notification listener received"
cat "$work/notifications.log"
tftp_s=$(grep -o 'bytes in [0-9]* blocks of [0-9]*, window [0-9]*, [0-9]* retransmits, [0-9.]* s' "$work/bootd.log" \
    | awk '{ s += $(NF - 1) } END { printf "%.2f", s }')
tftp_bytes=$(grep -o 'sent [^ ]*\( (as [^)]*)\)\?: [0-9]* bytes' "$work/bootd.log" \
    | awk '{ b += $(NF - 1) } END { print b + 0 }')
printf '== the machine is up: %s\n' "$marker"
printf '== the boot took %.1f s from power-on to the OS'"'"'s address; bootd'"'"'s TFTP transfers %s bytes in %s s\n' \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$tftp_bytes" "$tftp_s"
if [ "$firmware" = bios ]; then
    echo "   (iPXE spends ~15 s of it \"Configuring\": waiting for an IPv6 router this network does not have)"
fi
