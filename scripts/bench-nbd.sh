#!/usr/bin/env bash
# bench-nbd.sh: NBD service of bootd against nbd-server, nbdkit (file plugin) and
# qemu-nbd, same run, same image, same network, same clients. Run as root (network
# namespaces):
#   sudo scripts/bench-nbd.sh
#
# The four servers listen on 10.98.0.1 in one server namespace, each on its own
# ports, pinned to CPU 0; the clients run in a client namespace (10.98.0.2), pinned
# to CPU 1, across a veth pair. No traffic leaves the two namespaces; both are
# removed on exit or interrupt, with every server this script started.
#
# Each server offers the image twice: read-only, and copy-on-write (bootd: mode
# cow, per machine; nbd-server: copyonwrite, per connection; nbdkit: the cow
# filter, one overlay for all clients; qemu-nbd: --snapshot, likewise). Every
# overlay is a file, as the peers' are (bootd: cow_dir), so that resident memory
# compares the servers, not where their overlays live.
# Measured, the median of REPEAT runs, the servers taking turns:
#   seq MB/s     nbdcopy of the read-only export to null: (its default connections
#                and requests in flight)
#   rand 4K/s    random 4 KiB reads over one connection, DEPTH in flight, SECONDS long
#                (scripts/bench/nbd_bench_client.rs)
#   cow MB/s     WRITE_MIB MiB of sequential 256 KiB writes to the cow export, 8 in
#                flight, and a FLUSH
#   mem 50       the server's memory (proportional set size, its processes summed)
#                with 50 clients connected to the cow export, each having read a
#                block
# Each run is printed before the medians. MB/s = 10^6 bytes/s. Ratios are bootd's
# figure over the peer's (for memory, the peer's over bootd's: above 1, bootd uses
# less). Other work on the host moves the figures: the load average is printed
# before and after.
#
# Environment: REPEAT (3), SIZE_MIB (512), WRITE_MIB (128), SECONDS (5), DEPTH (16),
# BOOTD / CLIENT (prebuilt binaries instead of `cargo build`).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
SIZE_MIB=${SIZE_MIB:-512}
WRITE_MIB=${WRITE_MIB:-128}
SECONDS_RAND=${SECONDS:-5}
DEPTH=${DEPTH:-16}
SERVER=10.98.0.1
CLIENT_IP=10.98.0.2
SERVER_CPU=0
CLIENT_CPU=1
SERVERS=(bootd nbd-server nbdkit qemu-nbd)
declare -A RO_PORT=([bootd]=10809 [nbd-server]=10810 [nbdkit]=10811 [qemu-nbd]=10812)
declare -A COW_PORT=([bootd]=10809 [nbd-server]=10810 [nbdkit]=10821 [qemu-nbd]=10822)
declare -A RO_NAME=([bootd]=ro [nbd-server]=ro [nbdkit]="" [qemu-nbd]=ro)
declare -A COW_NAME=([bootd]=cow [nbd-server]=cow [nbdkit]="" [qemu-nbd]=cow)

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-nbd.sh: run as root (network namespaces)" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench-nbd.sh: needs 2 CPUs (servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU)" >&2
    exit 1
fi

# --- packages -----------------------------------------------------------------------
missing=()
for p in nbd-server nbdkit qemu-utils libnbd-bin python3 iproute2 util-linux procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    # Keep nbd-server's own service from starting on the host.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
fi

# --- binaries -----------------------------------------------------------------------
if [ -z "${BOOTD:-}" ] || [ -z "${CLIENT:-}" ]; then
    . scripts/root.sh
    find_cargo
    cargo build --release --locked --quiet --bin bootd --example nbd-bench-client
fi
BOOTD=$(realpath "${BOOTD:-${CARGO_TARGET_DIR:-target}/release/bootd}")
CLIENT=$(realpath "${CLIENT:-${CARGO_TARGET_DIR:-target}/release/examples/nbd-bench-client}")

# --- namespaces, image, servers -----------------------------------------------------
SNS=bdnbds$$
CNS=bdnbdc$$
WORK=$(mktemp -d /tmp/bench-nbd.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -s "$WORK/nbd-server.pid" ]; then
        kill "$(cat "$WORK/nbd-server.pid")" 2>/dev/null || true
    fi
    sleep 0.3
    ip netns del "$SNS" 2>/dev/null || true
    ip netns del "$CNS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$SNS"
ip netns add "$CNS"
ip link add bdnbdv$$ netns "$SNS" type veth peer name bdnbdw$$ netns "$CNS"
ip -n "$SNS" addr add "$SERVER/24" dev bdnbdv$$
ip -n "$CNS" addr add "$CLIENT_IP/24" dev bdnbdw$$
for ns in "$SNS" "$CNS"; do
    ip -n "$ns" link set lo up
done
ip -n "$SNS" link set bdnbdv$$ up
ip -n "$CNS" link set bdnbdw$$ up

head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/disk.img"
# Every server reads the image from the page cache.
cat "$WORK/disk.img" >/dev/null

cat >"$WORK/bootd.ini" <<INI
[logger]
level = warning
[nbd]
address = $SERVER
exports = ro disk.img; cow disk.img cow
cow_dir = $WORK
cow_max_size = 4G
INI
ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -n -c "$WORK/bootd.ini" \
    2>"$WORK/bootd.log" &
PIDS+=($!)
declare -A PID=([bootd]=$!)

cat >"$WORK/nbd-server.conf" <<INI
[generic]
user = root
group = root
listenaddr = $SERVER
port = ${RO_PORT[nbd-server]}
[ro]
exportname = $WORK/disk.img
readonly = true
[cow]
exportname = $WORK/disk.img
copyonwrite = true
INI
ip netns exec "$SNS" taskset -c "$SERVER_CPU" nbd-server -C "$WORK/nbd-server.conf" \
    -p "$WORK/nbd-server.pid" 2>"$WORK/nbd-server.log"

ip netns exec "$SNS" taskset -c "$SERVER_CPU" nbdkit -f -r -i "$SERVER" \
    -p "${RO_PORT[nbdkit]}" -P "$WORK/nbdkit-ro.pid" file "$WORK/disk.img" 2>"$WORK/nbdkit.log" &
PIDS+=($!)
PID[nbdkit]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" nbdkit -f -i "$SERVER" \
    -p "${COW_PORT[nbdkit]}" --filter=cow file "$WORK/disk.img" 2>>"$WORK/nbdkit.log" &
PIDS+=($!)
declare -A COW_PID=([nbdkit]=$!)

ip netns exec "$SNS" taskset -c "$SERVER_CPU" qemu-nbd -f raw -r -t -e 100 -b "$SERVER" \
    -p "${RO_PORT[qemu-nbd]}" -x ro "$WORK/disk.img" 2>"$WORK/qemu-nbd.log" &
PIDS+=($!)
PID[qemu-nbd]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" qemu-nbd -f raw -s -t -e 100 -b "$SERVER" \
    -p "${COW_PORT[qemu-nbd]}" -x cow "$WORK/disk.img" 2>>"$WORK/qemu-nbd.log" &
PIDS+=($!)
COW_PID[qemu-nbd]=$!

# Wait for every server to answer.
uri() { echo "nbd://$SERVER:$1/$2"; }
for s in "${SERVERS[@]}"; do
    for _ in $(seq 100); do
        if ip netns exec "$CNS" nbdinfo --size "$(uri "${RO_PORT[$s]}" "${RO_NAME[$s]}")" >/dev/null 2>&1; then
            continue 2
        fi
        sleep 0.1
    done
    echo "bench-nbd.sh: $s does not answer; its log:" >&2
    cat "$WORK"/*.log >&2
    exit 1
done
PID[nbd-server]=$(cat "$WORK/nbd-server.pid")
COW_PID[bootd]=${PID[bootd]}
COW_PID[nbd-server]=${PID[nbd-server]}

in_client() { ip netns exec "$CNS" taskset -c "$CLIENT_CPU" "$@"; }

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

seq_read() {
    local start end
    start=$(date +%s.%N)
    in_client nbdcopy "$(uri "${RO_PORT[$1]}" "${RO_NAME[$1]}")" null: >/dev/null
    end=$(date +%s.%N)
    awk -v b=$((SIZE_MIB << 20)) -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", b / (e - s) / 1e6}'
}

rand_read() {
    in_client "$CLIENT" "$SERVER" "${RO_PORT[$1]}" "${RO_NAME[$1]}" randread "$SECONDS_RAND" "$DEPTH"
}

cow_write() {
    in_client "$CLIENT" "$SERVER" "${COW_PORT[$1]}" "${COW_NAME[$1]}" write "$WRITE_MIB" 256 8
}

# pss PID: the proportional set size in KiB of PID and its children (nbd-server
# forks per client): shared pages are divided among the processes sharing them, so
# 50 processes are not charged 50 times for one library.
pss() {
    local total=0 p v
    for p in $1 $(pgrep -P "$1" || true); do
        # A process ending meanwhile (or a zombie) has no Pss: it counts 0.
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# mem_with_50 SERVER: its memory (PSS, KiB) once 50 clients of the cow export have each
# read a block, all still connected (they leave when the FIFO is written).
mem_with_50() {
    local out="$WORK/storm.$1" fifo="$WORK/fifo.$1"
    mkfifo "$fifo"
    in_client python3 integration/nbd_client.py "$SERVER" "${COW_PORT[$1]}" \
        storm "${COW_NAME[$1]}" 50 <"$fifo" >"$out" &
    local client=$!
    exec 7>"$fifo"
    for _ in $(seq 600); do
        grep -q "connections served" "$out" && break
        sleep 0.1
    done
    if ! grep -q "connections served" "$out"; then
        echo "bench-nbd.sh: $1 did not serve 50 clients within 60 s" >&2
    fi
    pss "${COW_PID[$1]}"
    echo >&7
    exec 7>&-
    wait "$client" || true
}

echo "image: $SIZE_MIB MiB random, in the page cache; servers pinned to CPU $SERVER_CPU, clients to CPU $CLIENT_CPU; median of $REPEAT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A SEQ RAND COW MEM
for s in "${SERVERS[@]}"; do
    SEQ[$s]=""
    RAND[$s]=""
    COW[$s]=""
done
for r in $(seq "$REPEAT"); do
    # Each repetition starts with the next server.
    for i in $(seq 0 $((${#SERVERS[@]} - 1))); do
        s=${SERVERS[$(((i + r) % ${#SERVERS[@]}))]}
        SEQ[$s]+=" $(seq_read "$s")"
        RAND[$s]+=" $(rand_read "$s")"
        COW[$s]+=" $(cow_write "$s")"
    done
done
for s in "${SERVERS[@]}"; do
    MEM[$s]=$(mem_with_50 "$s")
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

for s in "${SERVERS[@]}"; do
    echo "runs $s: seq${SEQ[$s]} / rand${RAND[$s]} / cow${COW[$s]}"
done
b_seq=$(median ${SEQ[bootd]})
b_rand=$(median ${RAND[bootd]})
b_cow=$(median ${COW[bootd]})
b_mem=${MEM[bootd]}
printf '\n%-11s %10s %8s %11s %8s %10s %8s %12s %8s\n' server "seq MB/s" ratio "rand 4K/s" ratio "cow MB/s" ratio "mem 50 MiB" ratio
for s in "${SERVERS[@]}"; do
    seq_m=$(median ${SEQ[$s]})
    rand_m=$(median ${RAND[$s]})
    cow_m=$(median ${COW[$s]})
    awk -v n="$s" -v a="$seq_m" -v b="$rand_m" -v c="$cow_m" -v m="${MEM[$s]}" \
        -v ba="$b_seq" -v bb="$b_rand" -v bc="$b_cow" -v bm="$b_mem" 'BEGIN {
        printf "%-11s %10.0f %8.2f %11.0f %8.2f %10.1f %8.2f %12.1f %8.2f\n",
            n, a, ba / a, b, bb / b, c, bc / c, m / 1024, m / bm
    }'
done
echo "(ratios: bootd over the peer; for memory, the peer over bootd)"
