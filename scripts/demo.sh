#!/usr/bin/env bash
# demo.sh: bootd's main job on a bundled configuration (conf/demo.ini).
#
# Builds bootd, makes a private boot network (two network namespaces joined by a
# veth pair, 10.123.0.0/24), starts bootd in one, and boots a client in the other
# the way a PXE machine does: DHCP with its PXE identity, TFTP of the boot file and
# its configuration, then DHCP again as the installed OS. Shows bootd's log and the
# client's view, prints how long the boot took, and removes everything it created,
# also when interrupted. Run as root: sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: run as root (it creates network namespaces): sudo $0" >&2
    exit 1
fi
scripts/deps.sh

echo "== building bootd (release)"
cargo build --release --locked --quiet
bootd="$root_dir/target/release/bootd"

tag="bdd$$"
srv="${tag}srv" cli="${tag}cli"
work=/tmp/bootd-demo
pids=()

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
    rm -rf "$work"
    echo "== cleaned up (namespaces, processes, $work)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== making the boot network: $srv (bootd, 10.123.0.1) <-> $cli (the machine to boot)"
ip netns add "$srv"
ip netns add "$cli"
ip link add "${tag}s" netns "$srv" type veth peer name "${tag}c" netns "$cli"
ip -n "$srv" addr add 10.123.0.1/24 brd + dev "${tag}s"
ip -n "$srv" link set lo up
ip -n "$srv" link set "${tag}s" up
ip -n "$cli" link set lo up
ip -n "$cli" link set "${tag}c" address 52:54:00:12:34:56
ip -n "$cli" link set "${tag}c" up

echo "== boot files in $work/tftp"
mkdir -p "$work/tftp/pxelinux.cfg" "$work/client"
head -c 42000 /dev/urandom > "$work/tftp/pxelinux.0"
head -c 4000000 /dev/urandom > "$work/tftp/vmlinuz"
install -m 0644 conf/pxelinux.cfg "$work/tftp/pxelinux.cfg/default"

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

echo "== starting bootd -c conf/demo.ini"
ip netns exec "$srv" "$bootd" -c conf/demo.ini > "$work/bootd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    grep -q "serving TFTP" "$work/bootd.log" 2>/dev/null && break
    sleep 0.1
done

cat > "$work/client/hook.sh" <<'HOOK'
#!/bin/sh
[ "$1" = bound ] || exit 0
echo "   client: address $ip/$mask from $serverid, boot file '${boot_file:-}', next server ${siaddr:-}"
echo "$ip" > /tmp/bootd-demo/client/ip
HOOK
chmod +x "$work/client/hook.sh"

start=$(date +%s.%N)
echo "== 1. the firmware asks for an address, as a BIOS PXE ROM (option 60 PXEClient, 93 = 0, 97 = UUID)"
ip netns exec "$cli" busybox udhcpc -i "${tag}c" -n -q -f -t 5 -T 1 -s "$work/client/hook.sh" \
    -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -x 0x61:00123e4567e89b12d3a456426614174000 2>/dev/null
pxe_ip=$(cat "$work/client/ip")
ip -n "$cli" addr add "$pxe_ip/24" dev "${tag}c"

echo "== 2. it loads the boot file and its configuration over TFTP"
cd "$work/client"
ip netns exec "$cli" curl -s --tftp-blksize 1468 -o pxelinux.0 tftp://10.123.0.1/pxelinux.0
ip netns exec "$cli" curl -s -o config tftp://10.123.0.1/pxelinux.cfg/01-52-54-00-12-34-56
ip netns exec "$cli" atftp --option "blksize 1468" --option "windowsize 16" -g -r vmlinuz -l vmlinuz 10.123.0.1 2>/dev/null
cmp -s pxelinux.0 "$work/tftp/pxelinux.0" && cmp -s vmlinuz "$work/tftp/vmlinuz" && cmp -s config "$work/tftp/pxelinux.cfg/default"
echo "   client: got pxelinux.0 ($(stat -c %s pxelinux.0) bytes), its configuration (through [filters]) and vmlinuz ($(stat -c %s vmlinuz) bytes), identical to the server's"
cd "$root_dir"
ip -n "$cli" addr flush dev "${tag}c"

echo "== 3. the operating system asks for an address again (plain DHCP; allow_simple_dhcp is off)"
ip netns exec "$cli" busybox udhcpc -i "${tag}c" -n -q -f -t 5 -T 1 -s "$work/client/hook.sh" 2>/dev/null
os_ip=$(cat "$work/client/ip")
end=$(date +%s.%N)
[ "$os_ip" = "$pxe_ip" ] && echo "   same address in both phases: $os_ip"

sleep 0.3
echo "== bootd's log"
sed 's/^/   /' "$work/bootd.log"
echo "== what the notification listener received"
cat "$work/notifications.log"
printf '== the boot took %.2f s (DHCP, TFTP of %s bytes, DHCP again)\n' \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$(( $(stat -c %s "$work/tftp/pxelinux.0") + $(stat -c %s "$work/tftp/vmlinuz") ))"
